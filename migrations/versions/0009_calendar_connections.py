"""Calendar connections: CalDAV accounts and ICS feeds, their calendars, busy copies and written events

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:30:00

"""

import sqlalchemy as sa
from alembic import op

import oncecal.columns


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# New tables, and two plain columns on calendars added with plain ALTER TABLE, not batch
# mode (see 0007: a rebuilt calendars table would cascade-delete its links and bookings).


def upgrade():
    op.create_table('connections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('server_url', sa.String(length=2000), nullable=True),
    sa.Column('username', sa.String(length=254), nullable=True),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('created_at', oncecal.columns.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['owners.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_connections_owner_id'), ['owner_id'], unique=False)

    op.create_table('connected_calendars',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('remote_url', sa.String(length=2000), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('writable', sa.Boolean(), nullable=False),
    sa.Column('last_good_read_at', oncecal.columns.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', oncecal.columns.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('error_kind', sa.String(length=16), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('next_sync_at', oncecal.columns.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reading_until', oncecal.columns.UTCDateTime(timezone=True), nullable=True),
    sa.Column('busy_digest', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('connected_calendars', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_connected_calendars_connection_id'), ['connection_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_connected_calendars_next_sync_at'), ['next_sync_at'], unique=False)

    op.create_table('busy_intervals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('start_at', oncecal.columns.UTCDateTime(timezone=True), nullable=False),
    sa.Column('end_at', oncecal.columns.UTCDateTime(timezone=True), nullable=False),
    sa.Column('floating', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['connected_calendars.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('busy_intervals', schema=None) as batch_op:
        batch_op.create_index('busy_intervals_source_start', ['source_id', 'start_at'], unique=False)

    op.create_table('calendar_sources',
    sa.Column('calendar_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('checks', sa.Boolean(), nullable=False),
    sa.Column('writes', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['calendars.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['connected_calendars.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('calendar_id', 'source_id')
    )
    with op.batch_alter_table('calendar_sources', schema=None) as batch_op:
        batch_op.create_index(
            'calendar_sources_one_writer', ['calendar_id'], unique=True,
            sqlite_where=sa.text('writes'), postgresql_where=sa.text('writes'),
        )
        batch_op.create_index('calendar_sources_source', ['source_id'], unique=False)

    op.create_table('written_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('href', sa.String(length=2000), nullable=False),
    sa.Column('etag', sa.String(length=255), nullable=True),
    sa.Column('deleted_at', oncecal.columns.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_id'], ['connected_calendars.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('booking_id', 'target_id', name='written_events_booking_target')
    )
    with op.batch_alter_table('written_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_written_events_target_id'), ['target_id'], unique=False)
    op.add_column('calendars', sa.Column('busy_revision', sa.Integer(), server_default='0', nullable=False))
    op.add_column('calendars', sa.Column('checks_busy', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    # Events written into owners' calendars stay there; OnceCal forgets where they are.
    op.drop_column('calendars', 'checks_busy')
    op.drop_column('calendars', 'busy_revision')
    op.drop_table('written_events')
    op.drop_table('calendar_sources')
    op.drop_table('busy_intervals')
    op.drop_table('connected_calendars')
    op.drop_table('connections')
