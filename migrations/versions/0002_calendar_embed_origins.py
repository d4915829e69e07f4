"""Add the origins allowed to embed a calendar's booking pages

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:50:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(sa.Column("embed_origins", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.alter_column("embed_origins", server_default=None)


def downgrade():
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("embed_origins")
