"""Outbox messages know their owner (emails shown in the dashboard); password resets keep a nonce and key id, so the outbox never holds their token; calendars count changes to their bookings

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 16:50:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('calendars', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bookings_revision', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nonce', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('key_id', sa.String(length=12), nullable=True))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_owner_id'), ['owner_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_outbox_owner_id_owners'), 'owners', ['owner_id'], ['id'], ondelete='CASCADE'
        )


def downgrade():
    # Emails queued since 0006 hold facts the older worker cannot render: end them, saying why.
    op.execute(
        "UPDATE outbox SET status = 'failed', last_error = 'queued by a newer OnceCal (downgraded)' "
        "WHERE kind = 'email' AND status IN ('pending', 'sending') "
        "AND CAST(payload AS TEXT) NOT LIKE '%\"html\"%'"
    )
    with op.batch_alter_table('calendars', schema=None) as batch_op:
        batch_op.drop_column('bookings_revision')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_owner_id_owners'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_owner_id'))
        batch_op.drop_column('owner_id')

    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.drop_column('key_id')
        batch_op.drop_column('nonce')
