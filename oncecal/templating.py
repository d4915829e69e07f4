"""Jinja filters and globals the templates share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import NamedTuple
from zoneinfo import ZoneInfo

from flask import Flask, has_request_context, request

from oncecal.embed import frame_stylesheet
from oncecal.models import Calendar


def local(value: datetime, tz: ZoneInfo) -> datetime:
    """Return ``value`` in ``tz``; in UTC if the zone's date would be past year 9999 or before 1.

    A stored instant at the edge of what datetime holds (an expiry of
    9999-12-31T23:59:59Z) has no date east of UTC: the page shows it in UTC
    rather than failing.
    """
    try:
        return value.astimezone(tz)
    except OverflowError:
        return value.astimezone(UTC)


# Regions whose everyday clock is 12-hour; elsewhere 24-hour is the norm.
TWELVE_HOUR_REGIONS = {"US", "CA", "AU", "NZ", "IN", "PH", "PK", "EG", "SA", "BD", "MY", "CO", "MX"}


def prefers_12_hour(accept_language: str | None) -> bool:
    """Guess the reader's clock from the first language of Accept-Language (en-US → 12 h)."""
    first = (accept_language or "").split(",")[0].split(";")[0].strip()
    language, _, region = first.replace("_", "-").partition("-")
    if region:
        return region.upper() in TWELVE_HOUR_REGIONS
    return language.lower() == "en"


def reader_prefers_12_hour() -> bool:
    """Tell whether this request's reader reads a 12-hour clock (False outside a request)."""
    return has_request_context() and prefers_12_hour(request.headers.get("Accept-Language"))


@cache
def _zone_countries() -> dict[str, str]:
    table = resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    rows = (line.split("\t") for line in table.splitlines() if line and not line.startswith("#"))
    return {row[2]: row[0] for row in rows}


def zone_prefers_12_hour(zone_name: str) -> bool:
    """Guess the clock of a time zone's country (America/New_York → 12 h; Europe/Berlin, UTC → 24 h)."""
    return _zone_countries().get(zone_name) in TWELVE_HOUR_REGIONS


def owner_prefers_12_hour(calendar: Calendar) -> bool:
    """The owner's one clock, on every dashboard page and in every notice: their calendar's zone's."""
    return zone_prefers_12_hour(calendar.timezone)


def invitee_prefers_12_hour(zone_name: str) -> bool:
    """The invitee's clock: their browser's, in a request of theirs (the booking pages); else their zone's."""
    if has_request_context() and request.blueprint == "booking":
        return reader_prefers_12_hour()
    return zone_prefers_12_hour(zone_name)


def _clock_text(local_time: datetime, twelve_hour: bool) -> str:
    hour, minute = local_time.hour, local_time.minute
    if twelve_hour:
        return f"{hour % 12 or 12}:{minute:02d} {'AM' if hour < 12 else 'PM'}"
    return f"{hour:02d}:{minute:02d}"


def clock(value: datetime, tz: ZoneInfo, twelve_hour: bool | None = None) -> str:
    """Format a time of day: 09:30, or 9:30 AM; by default in this request's reader's clock."""
    return _clock_text(local(value, tz), reader_prefers_12_hour() if twelve_hour is None else twelve_hour)


def time_range(start: datetime, end: datetime, tz: ZoneInfo, twelve_hour: bool | None = None) -> str:
    """Format a range with its clock said once: 09:00–09:30, 9:00–9:30 AM, 11:30 AM–12:30 PM.

    The one formatter of a booking's time, on every page and in every email.
    """
    if twelve_hour is None:
        twelve_hour = reader_prefers_12_hour()
    first, last = local(start, tz), local(end, tz)
    end_text = _clock_text(last, twelve_hour)
    if twelve_hour and (first.hour < 12) == (last.hour < 12) and last - first < timedelta(hours=12):
        return f"{_clock_text(first, twelve_hour).removesuffix(end_text[-3:])}–{end_text}"
    return f"{_clock_text(first, twelve_hour)}–{end_text}"


def long_date(value: datetime, tz: ZoneInfo | None = None) -> str:
    """Format a date like 'Tuesday, 1 December 2026'."""
    if tz is not None:
        value = local(value, tz)
    return f"{value:%A}, {value.day} {value:%B %Y}"


class SlotText(NamedTuple):
    """What the booking page writes for one slot, worked out once per slot."""

    value: str  # the form value: ISO 8601 UTC, as iso_utc
    clock: str  # the time of day in the reader's clock, as clock
    spoken: str  # "Tuesday, 1 December 2026, 09:30": long_date, then clock


def slot_texts(slots: Sequence[datetime], tz: ZoneInfo, twelve_hour: bool) -> list[SlotText]:
    """Format slots as the filters iso_utc, long_date and clock would, in one pass.

    The booking page shows dozens of slots; formatting each through three
    filters (each looking up the request's Accept-Language) was most of the
    cost of rendering it.
    """
    texts = []
    dates: dict[date, str] = {}
    for slot in slots:
        local_time = slot.astimezone(tz)
        day = local_time.date()
        if (spoken_date := dates.get(day)) is None:
            spoken_date = dates[day] = long_date(local_time)
        time_text = _clock_text(local_time, twelve_hour)
        u = slot.astimezone(UTC)
        value = f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"
        texts.append(SlotText(value, time_text, f"{spoken_date}, {time_text}"))
    return texts


def short_day(value: datetime) -> str:
    """Format a date like 'Tue 1 Dec'."""
    return f"{value:%a} {value.day} {value:%b}"


def iso_utc(value: datetime) -> str:
    """Format an instant as ISO 8601 UTC with a Z, the slot value format."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(minutes: int) -> str:
    """Format minutes as '30 min', '1 h' or '1 h 30 min'."""
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" + (f" {rest} min" if rest else "")


def utc_offset(tz: ZoneInfo, at: datetime) -> str:
    """Format a zone's offset at an instant, like 'UTC+01:00'."""
    offset = local(at, tz).utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def fmt_datetime(value: datetime) -> str:
    """Format an instant already in its zone, like 'Tue 1 Dec 2026, 09:00': logs, not bookings."""
    return f"{value:%a} {value.day} {value:%b %Y, %H:%M}"


def fmt_date(value: datetime) -> str:
    """Format an instant's date, already in its zone, like 'Tue 1 Dec 2026'."""
    return f"{value:%a} {value.day} {value:%b %Y}"


def calendar_tz(calendar: Calendar) -> ZoneInfo:
    """Return a calendar's zone."""
    return ZoneInfo(calendar.timezone)


def init_app(app: Flask) -> None:
    """Register the filters and globals."""
    for f in (
        local,
        clock,
        time_range,
        long_date,
        short_day,
        iso_utc,
        duration,
        utc_offset,
        fmt_datetime,
        fmt_date,
    ):
        app.add_template_filter(f)
    app.add_template_global(calendar_tz)
    app.add_template_global(frame_stylesheet)
    app.add_template_global(owner_prefers_12_hour)
