"""The synced copy of busy times: read for a calendar's slots, replaced by a good read of its source.

No HTTP here (that is oncecal.services.connections): this module is what the
booking pages and the booking's own transaction read, and what a sync writes.
A copy is replaced whole and only when it changed; each replacement raises
the ``busy_revision`` of the calendars that check it, so their kept booking
pages are stale at once (blueprints/booking/pagecache.py keys on the row).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from oncecal.extensions import db
from oncecal.models import BusyInterval, Calendar, CalendarSource, ConnectedCalendar
from oncecal.services.busy import BusyTime, on_clock

# How far a floating time may lie from its UTC reading (UTC-12 to UTC+14):
# the window of a query is widened by it, and the times are cut again on the clock.
_FLOAT_SLACK = timedelta(hours=15)

_CHECKED = sa.select(CalendarSource.source_id).where(
    CalendarSource.calendar_id == sa.bindparam("calendar_id"), CalendarSource.checks.is_(True)
)
_BUSY = (
    sa.select(BusyInterval.start_at, BusyInterval.end_at, BusyInterval.floating)
    .where(
        BusyInterval.source_id.in_(_CHECKED.scalar_subquery()),
        BusyInterval.end_at > sa.bindparam("after", type_=BusyInterval.end_at.type),
        BusyInterval.start_at < sa.bindparam("before", type_=BusyInterval.start_at.type),
    )
    .order_by(BusyInterval.start_at)
)


def busy_for(
    calendar_id: int, zone: ZoneInfo, after: datetime, before: datetime
) -> list[tuple[datetime, datetime]]:
    """Return the busy times (UTC) of every connected calendar that ``calendar_id`` checks, overlapping [after, before)."""
    rows = db.session.connection().execute(
        _BUSY, {"calendar_id": calendar_id, "after": after - _FLOAT_SLACK, "before": before + _FLOAT_SLACK}
    )
    times = [(row.start_at, row.end_at, row.floating) for row in rows]
    return [(start, end) for start, end in on_clock(times, zone) if end > after and start < before]


# How much of a window a page reads at a time: a page shows one week and
# looks a day past it for the next slot, so one read is usually all.
_CHUNK = timedelta(days=9)
_BUSY_FROM = (
    sa.select(BusyInterval.start_at, BusyInterval.end_at, BusyInterval.floating)
    .where(
        BusyInterval.source_id.in_(_CHECKED.scalar_subquery()),
        BusyInterval.start_at >= sa.bindparam("after", type_=BusyInterval.start_at.type),
        BusyInterval.start_at < sa.bindparam("before", type_=BusyInterval.start_at.type),
    )
    .order_by(BusyInterval.start_at)
)


def iter_busy(
    calendar_id: int, zone: ZoneInfo, after: datetime, before: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """Yield the same busy times as ``busy_for``, sorted by start, reading a week of them at a time.

    The slot sweep (oncecal.services.slots.iter_slots, ``more_busy``) stops
    after the week a page shows, and so does the reading. Each busy time is
    yielded once: by the week its start falls in on the calendar's clock.
    """
    if after >= before:
        return
    first_end = min(after + _CHUNK, before)
    yield from sorted(t for t in busy_for(calendar_id, zone, after, first_end) if t[0] < first_end)
    start = first_end
    while start < before:
        end = min(start + _CHUNK, before)
        rows = db.session.connection().execute(
            _BUSY_FROM,
            {"calendar_id": calendar_id, "after": start - _FLOAT_SLACK, "before": end + _FLOAT_SLACK},
        )
        placed = on_clock([(row.start_at, row.end_at, row.floating) for row in rows], zone)
        yield from sorted(t for t in placed if start <= t[0] < end)
        start = end


def in_the_way(calendar_id: int, zone: ZoneInfo, start: datetime, end: datetime, buffer: timedelta) -> bool:
    """Tell whether a busy time of a checked calendar overlaps [start, end), with ``buffer`` on each side."""
    return bool(busy_for(calendar_id, zone, start - buffer, end + buffer))


def digest(times: Sequence[BusyTime]) -> str:
    """A digest of busy times, to tell a changed read from an unchanged one."""
    hashed = hashlib.sha256()
    for busy in times:
        hashed.update(f"{busy.start.isoformat()}|{busy.end.isoformat()}|{int(busy.floating)}\n".encode())
    return hashed.hexdigest()


_INSERT = sa.insert(BusyInterval)


def raise_revisions(source_id: int) -> None:
    """Make the kept pages of every calendar that checks ``source_id`` stale; call inside a write transaction."""
    db.session.execute(
        sa.update(Calendar)
        .where(
            Calendar.id.in_(
                sa.select(CalendarSource.calendar_id).where(CalendarSource.source_id == source_id)
            )
        )
        .values(busy_revision=Calendar.busy_revision + 1)
    )


def merged(times: Sequence[BusyTime]) -> list[BusyTime]:
    """The busy spans ``times`` cover, overlapping and touching ones joined: what blocks slots is the same.

    A full day of back-to-back meetings is one row to read, not twenty.
    Floating and fixed times are joined apart (they meet the clock later).
    """
    joined: list[BusyTime] = []
    for floating in (False, True):
        current: BusyTime | None = None
        for busy in sorted(t for t in times if t.floating is floating):
            if current is not None and busy.start <= current.end:
                if busy.end > current.end:
                    current = BusyTime(current.start, busy.end, floating, "")
                continue
            if current is not None:
                joined.append(current)
            current = BusyTime(busy.start, busy.end, floating, "")
        if current is not None:
            joined.append(current)
    return joined


def replace(source: ConnectedCalendar, times: Sequence[BusyTime]) -> bool:
    """Replace a source's copy with ``times`` (merged) if it changed; return whether it did.

    Call inside a write transaction.
    """
    times = merged(times)
    fresh = digest(times)
    if fresh == source.busy_digest:
        return False
    db.session.execute(sa.delete(BusyInterval).where(BusyInterval.source_id == source.id))
    if times:
        db.session.connection().execute(
            _INSERT,
            [
                {"source_id": source.id, "start_at": t.start, "end_at": t.end, "floating": t.floating}
                for t in times
            ],
        )
    source.busy_digest = fresh
    raise_revisions(source.id)
    return True
