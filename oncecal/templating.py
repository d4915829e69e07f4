"""Jinja filters and globals the templates share."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask, has_request_context, request


def local(value: datetime, tz: ZoneInfo) -> datetime:
    """Return ``value`` in ``tz``."""
    return value.astimezone(tz)


# Regions whose everyday clock is 12-hour; elsewhere 24-hour is the norm.
TWELVE_HOUR_REGIONS = {"US", "CA", "AU", "NZ", "IN", "PH", "PK", "EG", "SA", "BD", "MY", "CO", "MX"}


def prefers_12_hour(accept_language: str | None) -> bool:
    """Guess the reader's clock from the first language of Accept-Language (en-US → 12 h)."""
    first = (accept_language or "").split(",")[0].split(";")[0].strip()
    language, _, region = first.replace("_", "-").partition("-")
    if region:
        return region.upper() in TWELVE_HOUR_REGIONS
    return language.lower() == "en"


def clock(value: datetime, tz: ZoneInfo) -> str:
    """Format a time of day in the reader's clock: 09:30, or 9:30 AM without JS for en-US."""
    local_time = value.astimezone(tz)
    if has_request_context() and prefers_12_hour(request.headers.get("Accept-Language")):
        return f"{local_time.hour % 12 or 12}:{local_time:%M} {'AM' if local_time.hour < 12 else 'PM'}"
    return local_time.strftime("%H:%M")


def long_date(value: datetime, tz: ZoneInfo | None = None) -> str:
    """Format a date like 'Tuesday, 1 December 2026'."""
    if tz is not None:
        value = value.astimezone(tz)
    return f"{value:%A}, {value.day} {value:%B %Y}"


def short_day(value: datetime) -> str:
    """Format a date like 'Tue 1 Dec'."""
    return f"{value:%a} {value.day} {value:%b}"


def iso_utc(value: datetime) -> str:
    """Format an instant as ISO 8601 UTC with a Z, the slot value format."""
    return value.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(minutes: int) -> str:
    """Format minutes as '30 min', '1 h' or '1 h 30 min'."""
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" + (f" {rest} min" if rest else "")


def utc_offset(tz: ZoneInfo, at: datetime) -> str:
    """Format a zone's offset at an instant, like 'UTC+01:00'."""
    offset = at.astimezone(tz).utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def fmt_datetime(value: datetime) -> str:
    """Format an instant already in its zone, like 'Tue 1 Dec 2026, 09:00'."""
    return f"{value:%a} {value.day} {value:%b %Y, %H:%M}"


def calendar_tz(calendar: object) -> ZoneInfo:
    """Return a calendar's zone."""
    return ZoneInfo(calendar.timezone)  # type: ignore[attr-defined]


def init_app(app: Flask) -> None:
    """Register the filters and globals."""
    for f in (local, clock, long_date, short_day, iso_utc, duration, utc_offset, fmt_datetime):
        app.add_template_filter(f)
    app.add_template_global(calendar_tz)
