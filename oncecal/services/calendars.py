"""Calendar settings: the text formats owners type hours in, and slug rules."""

from __future__ import annotations

import itertools
import re
from datetime import date, time
from typing import Any

import sqlalchemy as sa

from oncecal.db import write_transaction
from oncecal.embed import is_origin, normalise_origin
from oncecal.extensions import db
from oncecal.models import Calendar

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?")
_RANGE = re.compile(r"(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})")
OFF_WORDS = {"off", "closed", "none", "-"}


def slugify(name: str) -> str:
    """Make a URL slug from a calendar name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80].strip("-")
    return slug or "calendar"


def slug_taken(slug: str, except_id: int | None = None) -> bool:
    """Tell whether another calendar already uses ``slug``."""
    query = sa.select(Calendar.id).where(Calendar.slug == slug)
    if except_id is not None:
        query = query.where(Calendar.id != except_id)
    return db.session.scalar(query) is not None


class SlugTaken(Exception):
    """Another calendar already uses the slug."""


def create_calendar(owner_id: int, *, slug: str, **fields: Any) -> Calendar:
    """Create a calendar of the owner's under ``slug``, or raise SlugTaken."""
    calendar = Calendar(owner_id=owner_id, slug=slug, **fields)
    try:
        with write_transaction():
            if slug_taken(slug):
                raise SlugTaken(slug)
            db.session.add(calendar)
    except sa.exc.IntegrityError:
        raise SlugTaken(slug) from None
    return calendar


def _clock(hours: str, minutes: str) -> str:
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0:
        return "24:00"
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"{hours}:{minutes} is not a time of day")
    return f"{h:02d}:{m:02d}"


def parse_ranges_text(text: str) -> list[list[str]]:
    """Parse "09:00-12:00, 13:00-17:00" (empty or "off": no hours) into ranges."""
    text = text.strip()
    if not text or text.lower() in OFF_WORDS:
        return []
    ranges: list[list[str]] = []
    for part in re.split(r"[,;]", text):
        match = _RANGE.fullmatch(part.strip())
        if not match:
            raise ValueError(f"“{part.strip()}” is not a range like 09:00-17:00")
        start, end = _clock(*match.group(1, 2)), _clock(*match.group(3, 4))
        if start == "24:00" or (end != "24:00" and time.fromisoformat(end) <= time.fromisoformat(start)):
            raise ValueError(f"{start}-{end} ends before it starts")
        ranges.append([start, end])
    ranges.sort()
    for (_, end), (start, _) in itertools.pairwise(ranges):
        if end == "24:00" or start < end:
            raise ValueError("ranges of one day must not overlap")
    return ranges


def format_ranges(ranges: list[list[str]]) -> str:
    """Write ranges the way parse_ranges_text reads them."""
    return ", ".join(f"{start}-{end}" for start, end in ranges)


def parse_overrides_text(text: str) -> dict[str, list[list[str]]]:
    """Parse lines like "2026-12-24: off" or "2026-12-31: 10:00-12:00"."""
    overrides: dict[str, list[list[str]]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        day_text, _, hours = line.partition(":")
        try:
            day = date.fromisoformat(day_text.strip())
        except ValueError:
            raise ValueError(f"line {number}: start with a date like 2026-12-24") from None
        try:
            overrides[day.isoformat()] = parse_ranges_text(hours)
        except ValueError as error:
            raise ValueError(f"line {number}: {error}") from None
    return dict(sorted(overrides.items()))


def format_overrides(overrides: dict[str, list[list[str]]]) -> str:
    """Write overrides the way parse_overrides_text reads them."""
    return "\n".join(f"{day}: {format_ranges(r) or 'off'}" for day, r in sorted(overrides.items()))


def parse_origins_text(text: str) -> list[str]:
    """Parse one origin per line (https://example.com) into a normalised list."""
    origins: list[str] = []
    for line in text.split():
        origin = normalise_origin(line)
        if not is_origin(origin):
            raise ValueError(f"“{line}” is not an origin like https://www.example.com")
        if origin not in origins:
            origins.append(origin)
    return origins
