"""Calendars can be archived: deleted by their owner, kept for the bookings they had

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 11:40:00

"""
import sqlalchemy as sa
from alembic import op

import oncecal.columns


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# Plain ALTER TABLE, not batch mode: on SQLite batch mode rebuilds the table, and with
# foreign keys on, dropping the old calendars table would delete every link and booking
# (ON DELETE CASCADE). An archived calendar frees its slug by taking a tombstone, so the
# slug's UNIQUE constraint stays as it is.


def upgrade():
    op.add_column('calendars', sa.Column('archived_at', oncecal.columns.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    # Older code does not know archived calendars: their public pages stay off, as while archived.
    op.execute("UPDATE calendars SET public_page_enabled = false WHERE archived_at IS NOT NULL")
    op.drop_column('calendars', 'archived_at')
