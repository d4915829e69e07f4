"""The benchmark's databases and what goes in them: the measured calendar, its links, a million more, busy times."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import psycopg
import sqlalchemy as sa

from oncecal.app_objects import runtime
from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import (
    BusyInterval,
    Calendar,
    CalendarSource,
    ConnectedCalendar,
    Connection,
    OneTimeLink,
    Owner,
    utcnow,
)
from oncecal.services import busycopy, connections, links
from oncecal.services.busy import BusyTime
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
    # One write transaction from the start: a running server may commit
    # between a plain transaction's read and its write, which SQLite refuses.
    with app.app_context(), write_transaction():
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
        db.session.flush()
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


# --------------------------------------------------------------- busy times


def connect_feed(app: Any, calendar_id: int, url: str, *, last_attempt_at: datetime | None) -> int:
    """Make ``calendar_id`` check an ICS feed for conflicts, stored as connections.add_feed stores one.

    The feed URL is sealed with the app's secret box; ``last_attempt_at``
    now means a fresh copy (no page reads the feed), None one never read.
    Returns the connected calendar's id.
    """
    with app.app_context():
        now = utcnow()
        calendar = db.session.get_one(Calendar, calendar_id)
        sealed = runtime().secrets.seal(url)
        connection = Connection(
            owner_id=calendar.owner_id,
            kind="ics",
            host=urlsplit(url).hostname or url,
            secret=sealed.token,
            key_id=sealed.key_id,
            created_at=now,
        )
        source = ConnectedCalendar(
            name="Busy",
            writable=False,
            last_attempt_at=last_attempt_at,
            last_good_read_at=last_attempt_at,
            next_sync_at=(last_attempt_at + connections.SYNC_EVERY) if last_attempt_at else now,
        )
        connection.calendars = [source]
        with write_transaction():
            db.session.add(connection)
            db.session.flush()
            db.session.add(CalendarSource(calendar_id=calendar.id, source_id=source.id, checks=True))
            calendar.checks_busy = True
        return source.id


def off_hours_busy(now: datetime, count: int, days: int) -> list[tuple[datetime, datetime]]:
    """``count`` busy times (UTC) of 15 to 60 minutes spread over ``days`` from ``now``, none in CALENDAR_RULES' hours.

    Evenings, nights and weekends only: the page shows the same slots with
    them as without, so what it costs more is the busy times' own cost.
    """
    zone = ZoneInfo(CALENDAR_RULES["timezone"])
    open_days = {int(day) for day in CALENDAR_RULES["weekly_hours"]}
    (opens, closes), *_ = CALENDAR_RULES["weekly_hours"]["0"]
    opening, closing = clock.fromisoformat(opens), clock.fromisoformat(closes)
    chosen = random.Random(42)
    span = days * 24 * 60
    times: list[tuple[datetime, datetime]] = []
    while len(times) < count:
        start = now + timedelta(minutes=chosen.randrange(span))
        end = start + timedelta(minutes=chosen.choice((15, 30, 45, 60)))
        local = start.astimezone(zone)
        if local.weekday() in open_days:
            day_opens = datetime.combine(local.date(), opening, zone)
            day_closes = datetime.combine(local.date(), closing, zone)
            if start < day_closes and end > day_opens:
                continue
        times.append((start, end))
    return times


def apart_busy(now: datetime, count: int, days: int) -> list[tuple[datetime, datetime]]:
    """``count`` busy times of 5 minutes, one every 6 minutes off CALENDAR_RULES' hours: none overlap, none joined.

    The worst case for a page: every one is a row to read (10,000 over 60
    days reach the next months' evenings). ``days`` is not needed: they run
    on until there are ``count`` of them.
    """
    zone = ZoneInfo(CALENDAR_RULES["timezone"])
    open_days = {int(day) for day in CALENDAR_RULES["weekly_hours"]}
    (opens, closes), *_ = CALENDAR_RULES["weekly_hours"]["0"]
    opening, closing = clock.fromisoformat(opens), clock.fromisoformat(closes)
    times: list[tuple[datetime, datetime]] = []
    start = now
    margin = timedelta(hours=1)  # clear of the hours, whatever the slot grid
    while len(times) < count:
        start += timedelta(minutes=6)
        end = start + timedelta(minutes=5)
        local = start.astimezone(zone)
        if local.weekday() in open_days:
            day_opens = datetime.combine(local.date(), opening, zone)
            day_closes = datetime.combine(local.date(), closing, zone)
            if start < day_closes + margin and end > day_opens - margin:
                continue
        times.append((start, end))
    return times


def bulk_busy(app: Any, source_id: int, times: list[tuple[datetime, datetime]]) -> int:
    """Store ``times`` as the connected calendar's busy copy the way a sync does; return the rows it keeps.

    Through oncecal.services.busycopy.replace: overlapping and touching busy
    times are joined, as in every synced copy.
    """
    with app.app_context(), write_transaction():
        source = db.session.get_one(ConnectedCalendar, source_id)
        busycopy.replace(source, [BusyTime(s, e, False, f"bench-{i}") for i, (s, e) in enumerate(times)])
    with app.app_context():
        rows = db.session.scalar(
            sa.select(sa.func.count()).select_from(BusyInterval).where(BusyInterval.source_id == source_id)
        )
        return int(rows or 0)


BERLIN_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""


def feed_ics(now: datetime, events: int, weekly: int) -> tuple[bytes, int]:
    """An ICS feed of ``events`` VEVENTs in the measured calendar's window from ``now``; ``weekly`` of them recur.

    Single events are in UTC, as Google's feeds write them; the weekly ones
    are in Europe/Berlin (a VTIMEZONE), half of them standing meetings that
    began up to a year ago with no end, half series of 6 in the window.
    Returns the feed and how many busy rows a sync at ``now`` keeps of it:
    every occurrence that overlaps the window connections.sync_source reads
    (a day back, the 60 days ahead and 2 more), overlapping and touching ones
    joined into one (worked out here, apart from the app's own joining).
    """
    zone = ZoneInfo("Europe/Berlin")
    after, before = now - timedelta(days=1), now + timedelta(days=CALENDAR_RULES["days_ahead"] + 2)
    chosen = random.Random(5000)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//OnceCal bench//EN",
        "X-WR-CALNAME:Bench busy",
        *BERLIN_VTIMEZONE.splitlines(),
    ]
    spans: list[tuple[datetime, datetime]] = []
    for index in range(events):
        minutes = chosen.choice((30, 45, 60, 90))
        head = [
            "BEGIN:VEVENT",
            f"UID:bench-{index}@example.com",
            f"DTSTAMP:{stamp}",
            f"CREATED:{stamp}",
            f"LAST-MODIFIED:{stamp}",
            "SEQUENCE:0",
            "STATUS:CONFIRMED",
            "TRANSP:OPAQUE",
            f"SUMMARY:Meeting {index}",
            f"LOCATION:Room {chosen.randrange(1, 40)}",
        ]
        if index < events - weekly:
            start = now + timedelta(minutes=15 * chosen.randrange(4 * 24, 4 * 24 * 59))
            end = start + timedelta(minutes=minutes)
            lines += [*head, f"DTSTART:{start:%Y%m%dT%H%M%SZ}", f"DTEND:{end:%Y%m%dT%H%M%SZ}"]
            spans.append((start, end))
        else:
            standing = index % 2 == 0
            back = chosen.randrange(0, 365) if standing else -chosen.randrange(1, 20)
            day = (now - timedelta(days=back)).astimezone(zone).date()
            first = datetime.combine(day, clock(chosen.randrange(8, 18), chosen.choice((0, 30))), zone)
            rule = "FREQ=WEEKLY" if standing else "FREQ=WEEKLY;COUNT=6"
            lines += [
                *head,
                f"DTSTART;TZID=Europe/Berlin:{first:%Y%m%dT%H%M%S}",
                f"DTEND;TZID=Europe/Berlin:{first + timedelta(minutes=minutes):%Y%m%dT%H%M%S}",
                f"RRULE:{rule}",
            ]
            week = 0
            while standing or week < 6:
                start = first + timedelta(weeks=week)  # the same wall-clock time, across DST
                if start >= before:
                    break
                if start + timedelta(minutes=minutes) > after:
                    spans.append(
                        (start.astimezone(UTC), (start + timedelta(minutes=minutes)).astimezone(UTC))
                    )
                week += 1
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    joined = 0
    reach = None
    for start, end in sorted(spans):
        if reach is None or start > reach:
            joined += 1
            reach = end
        else:
            reach = max(reach, end)
    return ("\r\n".join(lines) + "\r\n").encode(), joined
