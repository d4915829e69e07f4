"""The synced copy of busy times: read for a calendar's slots, replaced by a good read of its source.

No HTTP here (that is oncecal.services.connections): this module is what the
booking pages and the booking's own transaction read, and what a sync writes.
A copy is replaced whole and only when it changed; each replacement raises
the ``busy_revision`` of the calendars that check it, so their kept booking
pages are stale at once (blueprints/booking/pagecache.py keys on the row).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from oncecal.extensions import db
from oncecal.models import BusyInterval, Calendar, CalendarSource, ConnectedCalendar
from oncecal.services.busy import BusyTime, on_clock
from oncecal.services.slots import Availability, wall_ranges

Span = tuple[datetime, datetime]

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
# Around each bookable range, beyond the buffer: a DST change that day moves wall-clock hours by one.
_DST_SPARE = timedelta(hours=1)


def _meets(prefix: str, count: int) -> sa.ColumnElement[bool]:
    """SQL: the busy time overlaps one of ``count`` spans, bound as ``<prefix>s<i>`` and ``<prefix>e<i>``."""
    start, end = BusyInterval.start_at.type, BusyInterval.end_at.type
    return sa.or_(
        *(
            sa.and_(
                BusyInterval.start_at < sa.bindparam(f"{prefix}e{i}", type_=start),
                BusyInterval.end_at > sa.bindparam(f"{prefix}s{i}", type_=end),
            )
            for i in range(count)
        )
    )


@functools.cache
def _chunk_query(spans: int, first: bool) -> sa.Select[tuple[datetime, datetime, bool]]:
    """The read of one chunk with ``spans`` bookable ranges: built once per shape, so its cache key is too.

    ``first``: the chunk at the window's start, which also takes what began
    before it and still runs; a later one reads only what starts in it.
    """
    after = sa.bindparam("after", type_=BusyInterval.start_at.type)
    # Running on past the chunk, it may block a later day.
    matters = [BusyInterval.end_at > sa.bindparam("past", type_=BusyInterval.end_at.type)]
    if spans:
        matters += [
            sa.and_(BusyInterval.floating.is_(False), _meets("f", spans)),
            sa.and_(BusyInterval.floating.is_(True), _meets("w", spans)),
        ]
    return sa.select(BusyInterval.start_at, BusyInterval.end_at, BusyInterval.floating).where(
        BusyInterval.source_id.in_(_CHECKED.scalar_subquery()),
        BusyInterval.end_at > after if first else BusyInterval.start_at >= after,
        BusyInterval.start_at < sa.bindparam("before", type_=BusyInterval.start_at.type),
        sa.or_(*matters),
    )


def _bookable(availability: Availability, first: date, last: date) -> tuple[list[Span], list[Span]]:
    """The calendar's bookable ranges from ``first`` to ``last`` (local dates), widened by the buffer and a spare hour.

    As instants (for fixed busy times) and as wall-clock times written as
    UTC (for floating ones, which are stored that way).
    """
    widen = availability.buffer + _DST_SPARE
    wall: list[Span] = []
    day = first
    while day <= last:
        for start, end in wall_ranges(availability, day):
            start, end = start - widen, end + widen
            if wall and start <= wall[-1][1]:  # overlapping once widened: one range
                wall[-1] = (wall[-1][0], max(wall[-1][1], end))
            else:
                wall.append((start, end))
        day += timedelta(days=1)
    tz = availability.timezone
    fixed = [(s.replace(tzinfo=tz).astimezone(UTC), e.replace(tzinfo=tz).astimezone(UTC)) for s, e in wall]
    return fixed, wall


def iter_busy(
    calendar_id: int, availability: Availability, after: datetime, before: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """Yield the busy times (UTC) that can block a slot of the calendar's in [after, before), sorted by start.

    Read nine days at a time, as the slot sweep (oncecal.services.slots.
    iter_slots, ``more_busy``) gets there: a page stops after the week it
    shows, and so does the reading. Only busy times that meet a bookable
    range (with the buffer), or run on past the chunk, are read: the
    evenings of a busy calendar never leave the database. Each is yielded once, by the chunk its start falls
    in on the calendar's clock.
    """
    zone = availability.timezone
    start = after
    while start < before:
        end = min(start + _CHUNK, before)
        # From the day before: a chunk may begin just after midnight, and the
        # buffer of that day's last slot reaches into it.
        fixed, wall = _bookable(
            availability, start.astimezone(zone).date() - timedelta(days=1), end.astimezone(zone).date()
        )
        first = start == after
        params: dict[str, object] = {
            "calendar_id": calendar_id,
            "after": start - _FLOAT_SLACK,
            "before": end + _FLOAT_SLACK,
            "past": end - _FLOAT_SLACK,
        }
        for prefix, spans in (("f", fixed), ("w", wall)):
            for i, (span_start, span_end) in enumerate(spans):
                params[f"{prefix}s{i}"], params[f"{prefix}e{i}"] = span_start, span_end
        query = _chunk_query(len(fixed), first)
        rows = db.session.connection().execute(query, params)
        placed = on_clock([(row.start_at, row.end_at, row.floating) for row in rows], zone)
        yield from sorted(t for t in placed if (first or t[0] >= start) and t[0] < end and t[1] > after)
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
