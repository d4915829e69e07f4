"""Add date overrides and a default expiry for new one-time links to calendars

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(sa.Column("date_overrides", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("default_link_expiry_minutes", sa.Integer(), nullable=True))
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.alter_column("date_overrides", server_default=None)


def downgrade():
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("default_link_expiry_minutes")
        batch_op.drop_column("date_overrides")
