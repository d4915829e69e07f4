"""The benchmark's databases and what goes in them: the measured calendar, its links, a million more."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from oncecal.app_objects import runtime
from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import Calendar, OneTimeLink, Owner, utcnow
from oncecal.services import links
from tests.support.apps import TEST_SECRET, create_pg_database, drop_pg_database, libpq_url, make_test_app
from tests.support.servers import migrate, server_env

PG_ADMIN_URL = os.environ.get(
    "ONCECAL_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

# The calendar every page is measured on: OnceCal's defaults (weekdays
# 09:00–17:00, 30 minutes, 4 hours' notice, 60 days ahead).
CALENDAR_RULES: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "duration_minutes": 30,
    "weekly_hours": {str(d): [["09:00", "17:00"]] for d in range(5)},
    "min_notice_minutes": 240,
    "days_ahead": 60,
}


@contextmanager
def database(backend: str, workdir: Path, pg_admin_url: str, name: str) -> Iterator[str]:
    """A fresh, empty database of this run's own; dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'{name}.sqlite3'}"
        return
    url = create_pg_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_pg_database(pg_admin_url, url)


def seed_owner_and_calendars(app: Any, count: int, prefix: str) -> list[int]:
    """Add ``count`` calendars with the measured rules; return their ids."""
    with app.app_context():
        owner = db.session.scalar(sa.select(Owner).where(Owner.email == "owner@example.com"))
        if owner is None:
            owner = Owner(
                email="owner@example.com",
                name="Olivia Owner",
                phone="+1 555 0100",
                password_hash="not-a-real-hash",
            )
            db.session.add(owner)
        calendars = [
            Calendar(owner=owner, name="Consultation", slug=f"{prefix}-{i}", **CALENDAR_RULES)
            for i in range(count)
        ]
        db.session.add_all(calendars)
        db.session.commit()
        return [c.id for c in calendars]


def issue_links(app: Any, calendar_ids: list[int], count: int) -> list[tuple[int, str]]:
    """Issue ``count`` single-use links round-robin over the calendars; return (calendar id, token)."""
    with app.app_context():
        keys = runtime().link_keys
        now = utcnow()
        calendars = [db.session.get_one(Calendar, cid) for cid in calendar_ids]
        issued = []
        with write_transaction():  # one transaction for all: each link joins it
            for i in range(count):
                calendar = calendars[i % len(calendars)]
                _link, token = links.issue_link(calendar, keys, now=now, source="bench")
                issued.append((calendar.id, token))
        return issued


def seed_measured(url: str) -> tuple[Any, int, str]:
    """Migrated database → one owner, the measured calendar and 100 links; return (app, calendar id, token)."""
    migrate(server_env(url, TEST_SECRET))
    app = make_test_app(url)
    calendar_id = seed_owner_and_calendars(app, 1, "consultation")[0]
    token = issue_links(app, [calendar_id], 100)[0][1]
    return app, calendar_id, token


def count_links(app: Any) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(OneTimeLink)) or 0


def lookup_plan(backend: str, url: str) -> str:
    """Return how the database finds a link by its token hash (it must use an index)."""
    if backend == "sqlite":
        conn = sqlite3.connect(sa.make_url(url).database)
        try:
            rows = conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM one_time_links WHERE token_hash = ?", ("0" * 64,)
            ).fetchall()
        finally:
            conn.close()
        return "; ".join(str(row[-1]) for row in rows)
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "EXPLAIN SELECT * FROM one_time_links WHERE token_hash = %s", ("0" * 64,)
        ).fetchall()
    return str(rows[0][0]).split("  (cost")[0].strip()


def bulk_links(backend: str, url: str, calendar_id: int, count: int) -> float:
    """Add ``count`` links with valid random columns, fast; return the seconds it took."""
    started = time.perf_counter()
    if count <= 0:
        return 0.0
    if backend == "sqlite":
        path = sa.make_url(url).database
        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

        def rows() -> Iterator[tuple[Any, ...]]:
            for _ in range(count):
                h = os.urandom(54).hex()  # nonce 32, key id 12, token hash 64 hex digits
                yield (calendar_id, h[:32], h[32:44], h[44:108], 0, 1, "bench", created)

        conn = sqlite3.connect(path, isolation_level=None, timeout=60)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO one_time_links "
                "(calendar_id, nonce, key_id, token_hash, uses, max_uses, source, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows(),
            )
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    else:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO one_time_links "
                "(calendar_id, nonce, key_id, token_hash, uses, max_uses, source, created_at) "
                "SELECT %(calendar)s, md5(random()::text || g::text), "
                "substr(md5(random()::text || g::text), 1, 12), "
                "encode(sha256(convert_to(random()::text || '/' || g::text, 'UTF8')), 'hex'), "
                "0, 1, 'bench', now() FROM generate_series(1, %(count)s) AS g",
                {"calendar": calendar_id, "count": count},
            )
            conn.execute("VACUUM ANALYZE one_time_links")
    return time.perf_counter() - started
