"""Busy time: what an iCalendar document says its owner is busy with, and those times on a calendar's clock.

Pure functions. ``busy_times`` reads a VCALENDAR (a feed, or the events a
CalDAV server returned) and expands its recurrences between two instants
with recurring-ical-events (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides,
VTIMEZONE; icalendar maps Windows zone names in TZID to IANA ones). What it
keeps is PRODUCT.md's busy: not TRANSPARENT, not CANCELLED. A time with no
zone (floating, or an all-day DATE) belongs to whoever reads it, so it is
kept as wall-clock time and put on a OnceCal calendar's clock only when that
calendar's slots are computed (``on_clock``); a VCALENDAR's X-WR-TIMEZONE
(Google's and Outlook's feeds) gives its floating times their zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

# One source may not make more busy times than this in its window: a feed that
# does (a rule every minute, a calendar of a whole building) is refused whole.
MAX_BUSY_TIMES = 50_000
# How many starts of one rule are walked, from its DTSTART, to reach the window's end: an hourly
# rule from 1970 would be 500,000; a weekly one since then is 3,000.
MAX_RULE_STEPS = 200_000


class NotICalendar(ValueError):
    """The document is not an iCalendar VCALENDAR, or a part of it cannot be read."""


class TooManyEvents(ValueError):
    """The document makes more busy times in the window than one source may."""


@dataclass(frozen=True, order=True)
class BusyTime:
    """One busy span: UTC instants, or (``floating``) wall-clock times written as if they were UTC."""

    start: datetime
    end: datetime
    floating: bool
    uid: str


def _zone(name: object) -> ZoneInfo | None:
    if not isinstance(name, str) or not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _as_datetime(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(0))


def _span(event: Any, zone: ZoneInfo | None) -> tuple[datetime, datetime, bool] | None:
    """An event's (start, end, floating), end after start; None if it takes no time."""
    start = event.get("DTSTART")
    if start is None:
        return None
    begin = start.dt
    if "DTEND" in event:
        finish = event["DTEND"].dt
    elif "DURATION" in event:
        finish = begin + event["DURATION"].dt
    elif isinstance(begin, datetime):
        finish = begin  # RFC 5545 3.6.1: a DATE-TIME start alone takes no time
    else:
        finish = begin + timedelta(days=1)  # a DATE start alone is that whole day
    all_day = not isinstance(begin, datetime)
    begin, finish = _as_datetime(begin), _as_datetime(finish)
    # A date is the whole of that date wherever it is read (the calendar's
    # zone, later); X-WR-TIMEZONE zones only floating times of day.
    if begin.tzinfo is None and zone is not None and not all_day:
        begin, finish = begin.replace(tzinfo=zone), finish.replace(tzinfo=zone)
    if begin.tzinfo is None:
        start_utc, end_utc, floating = begin.replace(tzinfo=UTC), finish.replace(tzinfo=UTC), True
    else:
        if finish.tzinfo is None:
            finish = finish.replace(tzinfo=begin.tzinfo)
        start_utc, end_utc, floating = begin.astimezone(UTC), finish.astimezone(UTC), False
    if end_utc <= start_utc:
        return None
    return start_utc, end_utc, floating


def _counts(event: Any) -> bool:
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return False
    return str(event.get("STATUS", "")).upper() != "CANCELLED"


def busy_times(document: bytes | str, after: datetime, before: datetime) -> list[BusyTime]:
    """Return the busy times of a VCALENDAR that overlap [after, before), sorted.

    Floating times are compared with the window as if they were UTC, with a
    day to spare on each side: the window is cut again on a calendar's clock.
    Raises NotICalendar for a document that is not one, TooManyEvents past
    MAX_BUSY_TIMES.
    """
    try:
        calendars = icalendar.Calendar.from_ical(document, multiple=True)
    except Exception:  # the parser raises what it meets; its message quotes the document
        raise NotICalendar("not an iCalendar file") from None
    calendars = [c for c in calendars if c.name == "VCALENDAR"]
    if not calendars:
        raise NotICalendar("not an iCalendar file (no VCALENDAR)")
    found: set[BusyTime] = set()
    for calendar in calendars:
        found.update(_busy_in(calendar, after, before))
        if len(found) > MAX_BUSY_TIMES:
            raise TooManyEvents(f"more than {MAX_BUSY_TIMES:,} events in the next months")
    return sorted(found)


def _zone_name(raw: object) -> str | None:
    """An X-WR-TIMEZONE as an IANA name: as it is, or a Windows name mapped by icalendar's CLDR table; None if neither."""
    name = str(raw).strip()
    for candidate in (name, WINDOWS_TO_OLSON.get(name)):
        if candidate and _zone(candidate) is not None:
            return candidate
    return None


_LONGEST = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


def _never(rule: Any) -> bool:
    """Whether a RRULE names only days that no month has (February 30th, April 31st).

    dateutil would search such a rule to the year 9999 for its first start:
    seconds of work, for each such rule, for a few bytes of feed.
    """
    days = [int(day) for day in rule.get("BYMONTHDAY", ())]
    if not days:
        return False
    months = [int(month) for month in rule.get("BYMONTH", ())] or list(_LONGEST)
    return not any(1 <= abs(day) <= _LONGEST.get(month, 0) for month in months for day in days)


def _drop_impossible_rules(calendar: Any) -> None:
    """Take from each VEVENT the RRULEs that can never happen: what is left is its DTSTART (RFC 5545 3.8.5.3)."""
    for event in calendar.walk("VEVENT"):
        rules = event.get("RRULE")
        if rules is None:
            continue
        kept = [rule for rule in (rules if isinstance(rules, list) else [rules]) if not _never(rule)]
        del event["RRULE"]
        for rule in kept:
            event.add("RRULE", rule)


def _bound_rules(query: Any, after: datetime, before: datetime) -> None:
    """Count the starts of every recurrence rule in the window before anything is expanded, lazily.

    Expanding makes each occurrence whole (a rule every second, for two
    months, is 5 million of them), so the limit is applied first, on the
    rules themselves: their own dateutil rules, walked one start at a time
    from their first and left at the window's end, at MAX_BUSY_TIMES starts
    in it or at MAX_RULE_STEPS in all.
    """
    left = MAX_BUSY_TIMES
    for series in getattr(query, "series", ()):
        recurrence = getattr(series, "recurrence", None)
        zone = getattr(recurrence, "tzinfo", None)
        start, stop = (
            (moment.astimezone(zone) if zone is not None else moment.replace(tzinfo=None))
            for moment in (after, before)
        )
        rules = getattr(recurrence, "rrules", None)
        if not rules:
            continue
        seen: set[datetime] = set()  # its rules overlap (the library adds DTSTART as one of them)
        for rule in rules:
            try:
                # From its first start: one that began long ago and repeats by the second costs the walk.
                for walked, moment in enumerate(rule):
                    if walked > MAX_RULE_STEPS:
                        raise TooManyEvents("a rule that repeats too often since it began")
                    if moment >= stop:
                        break
                    if moment < start or moment in seen:
                        continue
                    seen.add(moment)
                    left -= 1
                    if left < 0:
                        raise TooManyEvents(f"more than {MAX_BUSY_TIMES:,} events in the next months")
            except TooManyEvents:
                raise
            except (TypeError, ValueError):
                continue  # dates its rule cannot compare with the window: the expansion says what they are


def _busy_in(calendar: Any, after: datetime, before: datetime) -> Iterator[BusyTime]:
    # recurring-ical-events applies X-WR-TIMEZONE itself (x-wr-timezone) and
    # fails on a name it does not know: give it the IANA name, or none at all.
    if "X-WR-TIMEZONE" in calendar:
        name = _zone_name(calendar["X-WR-TIMEZONE"])
        del calendar["X-WR-TIMEZONE"]
        if name:
            calendar.add("X-WR-TIMEZONE", name)
    zone = _zone(calendar.get("X-WR-TIMEZONE"))
    margin = timedelta(days=1)
    try:
        _drop_impossible_rules(calendar)
        query = recurring_ical_events.of(calendar, components=["VEVENT"])
        _bound_rules(query, after - margin, before + margin)
        occurrences = query.between(after - margin, before + margin)
        if len(occurrences) > MAX_BUSY_TIMES:
            raise TooManyEvents(f"more than {MAX_BUSY_TIMES:,} events in the next months")
        found = []
        for event in occurrences:
            span = _span(event, zone) if _counts(event) else None
            if span is None:
                continue
            start, end, floating = span
            slack = margin if floating else timedelta(0)
            if end + slack > after and start - slack < before:
                found.append(BusyTime(start, end, floating, str(event.get("UID", ""))))
    except TooManyEvents:
        raise
    except Exception as failure:  # the library raises its own errors and the parser's, quoting the document
        raise NotICalendar(f"an event cannot be read ({type(failure).__name__})") from None
    yield from found


def on_clock(
    times: Iterable[tuple[datetime, datetime, bool]], zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """Put busy times on a calendar's clock: floating wall-clock times become instants in ``zone``.

    An all-day event (midnight to midnight, floating) so blocks its whole
    date in the calendar's zone, whatever the zone of the server it came from.
    """
    placed = []
    for start, end, floating in times:
        if floating:
            start = start.replace(tzinfo=zone).astimezone(UTC)
            end = end.replace(tzinfo=zone).astimezone(UTC)
        placed.append((start, end))
    return placed
