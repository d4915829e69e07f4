"""Domain events: one row per change, turned into deliveries by the worker; reminders found from due bookings

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 15:00:00

"""

import sqlalchemy as sa
from alembic import op

import oncecal.columns


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Plain ALTER TABLE on bookings, not batch mode: on SQLite batch mode rebuilds the table,
# and with foreign keys on that would delete what refers to it (see 0007).


def upgrade():
    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', oncecal.columns.UTCDateTime(timezone=True), nullable=False),
    sa.Column('fanned_out_at', oncecal.columns.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['link_id'], ['one_time_links.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['owners.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index('events_pending', ['fanned_out_at', 'id'], unique=False)

    op.add_column('bookings', sa.Column('remind_at', oncecal.columns.UTCDateTime(timezone=True), nullable=True))
    op.create_index(op.f('ix_bookings_remind_at'), 'bookings', ['remind_at'], unique=False)
    # A reminder still queued becomes its booking's remind_at; the worker finds it there.
    op.execute(
        "UPDATE bookings SET remind_at = (SELECT MIN(next_attempt_at) FROM outbox"
        " WHERE outbox.event_id = 'reminder-' || bookings.id AND outbox.status = 'pending')"
        " WHERE cancelled_at IS NULL"
    )
    op.execute(
        "UPDATE outbox SET status = 'cancelled' WHERE event_type = 'booking.reminder' AND status = 'pending'"
    )


def downgrade():
    connection = op.get_bind()
    pending = connection.scalar(sa.text("SELECT COUNT(*) FROM events WHERE fanned_out_at IS NULL"))
    if pending:
        raise RuntimeError(
            f"{pending} events have no deliveries yet: run `flask worker --once` before downgrading"
        )
    # The older worker sends reminders queued as outbox rows: queue the ones still due.
    utc = oncecal.columns.UTCDateTime(timezone=True)
    due = connection.execute(
        sa.text(
            "SELECT b.id, b.invitee_email, b.start_at, b.end_at, b.sequence, b.remind_at,"
            " c.name AS calendar, c.owner_id, o.name AS owner"
            " FROM bookings b JOIN calendars c ON c.id = b.calendar_id JOIN owners o ON o.id = c.owner_id"
            " WHERE b.remind_at IS NOT NULL AND b.cancelled_at IS NULL"
        ).columns(start_at=utc, end_at=utc, remind_at=utc)
    ).all()
    outbox = sa.table(
        'outbox',
        *(sa.column(name) for name in ('kind', 'event_id', 'event_type', 'owner_id', 'status', 'attempts')),
        sa.column('payload', sa.JSON()),
        sa.column('next_attempt_at', utc),
        sa.column('created_at', utc),
    )
    rows = []
    for row in due:
        facts = {
            "id": row.id, "to_owner": False, "headline": "A reminder of your meeting", "lines": [],
            "method": "REQUEST", "start_at": row.start_at.isoformat(), "end_at": row.end_at.isoformat(),
            "sequence": row.sequence, "cancelled": False,
        }
        rows.append({
            "kind": "email", "event_id": f"reminder-{row.id}", "event_type": "booking.reminder",
            "owner_id": row.owner_id, "status": "pending", "attempts": 0,
            "payload": {"to": row.invitee_email, "subject": f"Reminder: {row.calendar} with {row.owner}",
                        "booking": facts},
            "next_attempt_at": row.remind_at, "created_at": row.remind_at,
        })
    if rows:
        op.bulk_insert(outbox, rows)
    op.drop_index(op.f('ix_bookings_remind_at'), table_name='bookings')
    op.drop_column('bookings', 'remind_at')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('events_pending')
        batch_op.drop_index(batch_op.f('ix_events_owner_id'))
    op.drop_table('events')
