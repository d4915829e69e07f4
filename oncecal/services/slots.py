"""Slot computation: a pure function of rules, busy times (bookings, other calendars), now and time zones."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

UTC = UTC

TimeRange = tuple[time, time | None]  # end None means midnight at the day's end


def parse_ranges(ranges: Sequence[Sequence[str]]) -> tuple[TimeRange, ...]:
    """Turn ``[["09:00", "17:00"]]`` into sorted time ranges; "24:00" ends a day."""
    parsed = []
    for start, end in ranges:
        start_t = time.fromisoformat(start)
        end_t = None if end == "24:00" else time.fromisoformat(end)
        if end_t is not None and end_t <= start_t:
            raise ValueError(f"range {start}–{end} ends before it starts")
        parsed.append((start_t, end_t))
    return tuple(sorted(parsed, key=lambda r: r[0]))


def parse_weekly_hours(raw: Mapping[str, Sequence[Sequence[str]]]) -> dict[int, tuple[TimeRange, ...]]:
    """Turn ``{"0": [["09:00", "17:00"]]}`` (Monday is "0") into weekday → ranges."""
    return {int(weekday): parse_ranges(ranges) for weekday, ranges in raw.items()}


def parse_overrides(raw: Mapping[str, Sequence[Sequence[str]]]) -> dict[date, tuple[TimeRange, ...]]:
    """Turn ``{"2026-12-24": []}`` into date → ranges (empty: a day off)."""
    return {date.fromisoformat(day): parse_ranges(ranges) for day, ranges in raw.items()}


@dataclass(frozen=True)
class Availability:
    """When a calendar can be booked, in the calendar's own time zone."""

    timezone: ZoneInfo
    weekly: Mapping[int, tuple[TimeRange, ...]]
    duration: timedelta
    buffer: timedelta = timedelta(0)
    notice: timedelta = timedelta(0)
    days_ahead: int = 60
    # Date overrides: a date → its ranges instead of the weekday's (empty: day off).
    overrides: Mapping[date, tuple[TimeRange, ...]] = field(default_factory=dict)


def wall_ranges(availability: Availability, day: date) -> list[tuple[datetime, datetime]]:
    """The day's bookable ranges as wall-clock times written as if UTC (the way floating busy times are kept)."""
    ranges = availability.overrides.get(day, availability.weekly.get(day.weekday(), ()))
    midnight = datetime.combine(day, time(0), tzinfo=UTC)
    return [
        (
            datetime.combine(day, start, tzinfo=UTC),
            midnight + timedelta(days=1) if end is None else datetime.combine(day, end, tzinfo=UTC),
        )
        for start, end in ranges
    ]


def _local_instant(day: date, wall: time, tz: ZoneInfo) -> datetime | None:
    """Return the UTC instant of a wall-clock time, or None if DST skips it."""
    local = datetime.combine(day, wall, tzinfo=tz)
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return utc


def _range_end(day: date, end: time | None, tz: ZoneInfo) -> datetime:
    if end is None:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    instant = _local_instant(day, end, tz)
    if instant is None:  # the range ends inside a DST gap: end where the gap ends
        return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)
    return instant


def _candidates(availability: Availability, day: date) -> Iterable[datetime]:
    """Yield the slot starts the rules offer on ``day`` (UTC, ascending per range)."""
    ranges = availability.overrides.get(day, availability.weekly.get(day.weekday(), ()))
    if not ranges:
        return
    tz = availability.timezone
    step_minutes = int(availability.duration.total_seconds() // 60)
    offset = datetime.combine(day, time(0), tzinfo=tz).utcoffset()
    next_offset = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).utcoffset()
    if offset is not None and offset == next_offset:
        # The same offset at both midnights: no DST change today (no zone
        # changes twice in a day), so every wall time exists once and is
        # local midnight's UTC instant plus its minutes. The common case, and
        # ten times cheaper than converting each wall time.
        midnight = datetime.combine(day, time(0), tzinfo=UTC) - offset
        for start, end in ranges:
            minute = start.hour * 60 + start.minute
            end_minute = 24 * 60 if end is None else end.hour * 60 + end.minute
            while minute + step_minutes <= end_minute:
                yield midnight + timedelta(minutes=minute)
                minute += step_minutes
        return
    yield from _candidates_on_dst_day(availability, day, ranges, step_minutes)


def _candidates_on_dst_day(
    availability: Availability, day: date, ranges: tuple[TimeRange, ...], step_minutes: int
) -> Iterable[datetime]:
    tz = availability.timezone
    for start, end in ranges:
        range_end = _range_end(day, end, tz)
        minute = start.hour * 60 + start.minute
        end_minute = 24 * 60 if end is None else end.hour * 60 + end.minute
        while minute + step_minutes <= end_minute:
            slot_start = _local_instant(day, time(minute // 60, minute % 60), tz)
            minute += step_minutes
            if slot_start is None:
                continue
            if slot_start + availability.duration <= range_end:
                yield slot_start


def iter_slots(
    availability: Availability,
    busy: Iterable[tuple[datetime, datetime]],
    now: datetime,
    *,
    more_busy: Iterable[tuple[datetime, datetime]] = (),
) -> Iterator[datetime]:
    """Yield the bookable slot starts (UTC, ascending) from now to the horizon, lazily.

    The same slots as ``available_slots``; a caller that needs only the first
    week stops early and the later days are never computed. ``more_busy`` is
    busy time already sorted by start, read only as far as the slots get
    (the owner's other calendars, read from the database week by week).
    """
    tz = availability.timezone
    earliest = now + availability.notice
    today = now.astimezone(tz).date()
    buffer = availability.buffer
    duration = availability.duration
    ahead = heapq.merge(sorted(busy), more_busy)
    upcoming = next(ahead, None)

    latest_end = datetime.min.replace(tzinfo=UTC)
    for offset in range(availability.days_ahead + 1):
        # Overlapping ranges may offer one start twice; sorting keeps the sweep valid.
        for start in sorted(set(_candidates(availability, today + timedelta(days=offset)))):
            if start < earliest:
                continue
            end = start + duration
            # Fold in every busy time that starts before this slot's buffered
            # end; slots ascend, so each one is looked at once.
            while upcoming is not None and upcoming[0] < end + buffer:
                latest_end = max(latest_end, upcoming[1])
                upcoming = next(ahead, None)
            if latest_end + buffer > start:
                continue
            yield start


def available_slots(
    availability: Availability,
    busy: Iterable[tuple[datetime, datetime]],
    now: datetime,
) -> list[datetime]:
    """Return the bookable slot starts (UTC, ascending) from now to the horizon.

    ``busy`` holds the (start, end) of live bookings; the buffer keeps that
    much time free on both sides of each. Slots start on the calendar's
    wall-clock grid (every ``duration`` from each range's start), skip
    wall-clock times that a DST change removes, start no earlier than
    ``now + notice`` and on a local date no later than today + ``days_ahead``.
    """
    return list(iter_slots(availability, busy, now))


def is_available(
    availability: Availability,
    busy: Iterable[tuple[datetime, datetime]],
    now: datetime,
    start: datetime,
) -> bool:
    """Tell whether ``start`` is in ``available_slots(availability, busy, now)``.

    Only ``start``'s own day is computed, not the whole horizon.
    """
    # Bounded as instants first: a posted 9999-12-31T23:00Z has no local date in zones east of UTC.
    if not now + availability.notice <= start <= now + timedelta(days=availability.days_ahead + 2):
        return False
    tz = availability.timezone
    day = start.astimezone(tz).date()
    today = now.astimezone(tz).date()
    last_day = today + timedelta(days=availability.days_ahead)
    if not today <= day <= last_day:
        return False
    if start not in set(_candidates(availability, day)):
        return False
    # The sweep of iter_slots blocks a slot exactly when a booking starts
    # before its buffered end and ends (plus the buffer) after its start.
    end = start + availability.duration + availability.buffer
    return not any(b_start < end and b_end + availability.buffer > start for b_start, b_end in busy)
