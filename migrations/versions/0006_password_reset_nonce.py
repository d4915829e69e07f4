"""Password resets keep a nonce and key id, so the outbox never holds their token

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
    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nonce', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('key_id', sa.String(length=12), nullable=True))


def downgrade():
    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.drop_column('key_id')
        batch_op.drop_column('nonce')
