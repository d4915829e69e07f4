"""Calendars can be archived (deleted with their history kept): slugs are unique among live calendars only; new calendars let invitees change bookings until the start

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 11:40:00

"""

import sqlalchemy as sa
from alembic import op

import oncecal.types


# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# 0001 left the slug's UNIQUE unnamed: SQLite reflects it without a name, so batch mode names it to drop it.
_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _drop_slug_unique(batch_op) -> None:
    if op.get_bind().dialect.name == "postgresql":
        batch_op.drop_constraint("calendars_slug_key", type_="unique")
    else:
        batch_op.drop_constraint("uq_calendars_slug", type_="unique")


def upgrade():
    with op.batch_alter_table("calendars", schema=None, naming_convention=_NAMES) as batch_op:
        batch_op.add_column(sa.Column("archived_at", oncecal.types.UTCDateTime(timezone=True), nullable=True))
        _drop_slug_unique(batch_op)
        # Only what a raw INSERT gets: the settings of existing calendars stay as their owners chose.
        batch_op.alter_column("change_cutoff_hours", existing_type=sa.Integer(), server_default="0")
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.create_index(
            "calendars_live_slug",
            ["slug"],
            unique=True,
            sqlite_where=sa.text("archived_at IS NULL"),
            postgresql_where=sa.text("archived_at IS NULL"),
        )


def downgrade():
    # Slugs must be unique again: archived calendars take one no live slug can be ("~" is not
    # allowed in slugs), and their public pages stay off, as they were while archived.
    op.execute(
        "UPDATE calendars SET slug = '~archived-' || CAST(id AS VARCHAR(20)), public_page_enabled = false "
        "WHERE archived_at IS NOT NULL"
    )
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_index("calendars_live_slug")
    with op.batch_alter_table("calendars", schema=None, naming_convention=_NAMES) as batch_op:
        batch_op.alter_column("change_cutoff_hours", existing_type=sa.Integer(), server_default="24")
        if op.get_bind().dialect.name == "postgresql":
            batch_op.create_unique_constraint("calendars_slug_key", ["slug"])
        else:
            batch_op.create_unique_constraint("uq_calendars_slug", ["slug"])
        batch_op.drop_column("archived_at")
