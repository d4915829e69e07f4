"""The migrations build exactly the schema the models describe, on both databases: from
empty to head, down to base (empty again), and up to head once more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from oncecal.extensions import db
from tests.support.apps import create_pg_database, drop_pg_database, make_test_app


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
        return
    admin = request.getfixturevalue("postgres_admin_url")
    url = create_pg_database(admin)
    yield url
    drop_pg_database(admin, url)


def _state(app) -> tuple[list, set[str], str | None]:
    """The difference from the models, the tables, and the exclusion constraint (PostgreSQL)."""
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        tables = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
        constraint = None
        if db.engine.dialect.name == "postgresql":
            constraint = conn.scalar(
                sa.text(
                    "SELECT conname FROM pg_constraint WHERE contype = 'x' AND conname = 'bookings_no_overlap'"
                )
            )
    return diff, tables, constraint


def test_upgrade_downgrade_upgrade(empty_database_url, proof):
    app = make_test_app(empty_database_url)
    model_tables = set(db.metadata.tables)
    postgres = empty_database_url.startswith("postgresql")
    with app.app_context():
        steps = []
        for step in ("upgrade", "downgrade", "upgrade again"):
            if step == "downgrade":
                downgrade(revision="base")
            else:
                upgrade()
            diff, tables, constraint = _state(app)
            if step == "downgrade":
                steps.append(f"{step}: {len(tables)} tables")
                assert tables == set()
            else:
                steps.append(
                    f"{step}: {len(tables)} tables, {len(diff)} differences"
                    + (f", {constraint}" if postgres else "")
                )
                assert diff == [] and tables == model_tables
                assert constraint == ("bookings_no_overlap" if postgres else None)
        db.engine.dispose()
    expected = [
        f"upgrade: {len(model_tables)} tables, 0 differences" + (", bookings_no_overlap" if postgres else ""),
        "downgrade: 0 tables",
        f"upgrade again: {len(model_tables)} tables, 0 differences"
        + (", bookings_no_overlap" if postgres else ""),
    ]
    proof.record(
        "migrations: empty → head → base → head",
        tried="flask-migrate upgrade, downgrade base, upgrade; compare with the models",
        expected="; ".join(expected),
        got="; ".join(steps),
    )


_SEED = (
    "INSERT INTO owners (email, name, password_hash, show_name, show_email, show_phone, created_at)"
    " VALUES ('olga@example.com', 'Olga', 'h', true, true, true, :now)",
    "INSERT INTO calendars (owner_id, name, slug, key, timezone, duration_minutes, weekly_hours,"
    " min_notice_minutes, days_ahead, buffer_minutes, public_page_enabled, date_overrides, embed_origins,"
    " allow_cancel, allow_reschedule, change_cutoff_hours, bookings_revision, created_at)"
    " VALUES (1, 'Intro', 'intro', 'k', 'UTC', 30, '{}', 0, 60, 0, true, '{}', '[]', true, true, 24, 0, :now)",
    "INSERT INTO one_time_links (calendar_id, nonce, key_id, token_hash, uses, max_uses, source, created_at)"
    " VALUES (1, 'n', 'k', 'h', 1, 1, 'cli', :now)",
    "INSERT INTO bookings (ref, calendar_id, link_id, start_at, end_at, blocked_until, invitee_name,"
    " invitee_email, invitee_timezone, created_at, sequence)"
    " VALUES ('r', 1, 1, :now, :end, :end, 'Ivy', 'ivy@example.com', 'UTC', :now, 0)",
)


def _rows() -> str:
    with db.engine.connect() as conn:
        counts = [
            conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) for table in ("one_time_links", "bookings")
        ]
        cutoff = conn.scalar(sa.text("SELECT change_cutoff_hours FROM calendars"))
    return f"{counts[0]} link, {counts[1]} booking, cutoff {cutoff} h"


def test_the_calendar_archive_migration_keeps_every_row(empty_database_url, proof):
    """0007 changes calendars, which links and bookings reference ON DELETE CASCADE: rebuilding that
    table on SQLite (batch mode) with foreign keys on would delete them all."""
    app = make_test_app(empty_database_url)
    with app.app_context():
        upgrade(revision="0006")
        now = datetime.now(UTC)
        with db.engine.begin() as conn:
            for statement in _SEED:
                conn.execute(sa.text(statement), {"now": now, "end": now + timedelta(minutes=30)})
        steps = [f"0006: {_rows()}"]
        upgrade()
        steps.append(f"head: {_rows()}")
        downgrade(revision="0006")
        steps.append(f"0006 again: {_rows()}")
        db.engine.dispose()
    kept = "1 link, 1 booking, cutoff 24 h"
    proof.record(
        "migrations: 0006 → head → 0006 with a calendar, its link and booking",
        tried="upgrade to 0006, add rows, upgrade to head, downgrade to 0006",
        expected=f"0006: {kept}; head: {kept}; 0006 again: {kept}",
        got="; ".join(steps),
    )
