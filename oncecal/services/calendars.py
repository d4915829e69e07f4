"""Calendars: create, edit and delete (archive) them, the links their owner makes, and the text formats of hours."""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from oncecal.db import write_transaction
from oncecal.embed import is_origin, normalise_origin
from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink
from oncecal.services import bookings, changes, links
from oncecal.services.tokens import LinkKeys

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


def calendars_of(owner_id: int, *, archived: bool = False) -> list[Calendar]:
    """Return the owner's calendars in use (or, ``archived``, the deleted ones kept), by name."""
    kept = Calendar.archived_at.is_not(None) if archived else Calendar.archived_at.is_(None)
    return list(
        db.session.scalars(
            sa.select(Calendar).where(Calendar.owner_id == owner_id, kept).order_by(Calendar.name)
        )
    )


def calendar_by_slug(slug: str) -> Calendar | None:
    """Return the calendar in use under ``slug``, if any."""
    return db.session.scalar(sa.select(Calendar).where(Calendar.slug == slug, Calendar.archived_at.is_(None)))


def create_calendar(owner_id: int, *, slug: str | None = None, **fields: Any) -> Calendar:
    """Create a calendar of the owner's with ``fields`` (its columns), in one transaction.

    Without ``slug`` it gets one made from its name, numbered past those
    taken; a ``slug`` another calendar has raises SlugTaken.
    """
    try:
        with write_transaction():
            calendar = Calendar(owner_id=owner_id, slug=_free_slug(slug, fields["name"]), **fields)
            db.session.add(calendar)
    except sa.exc.IntegrityError:
        raise SlugTaken(slug) from None
    return calendar


def edit_calendar(calendar: Calendar, *, slug: str | None = None, **fields: Any) -> None:
    """Change a calendar's columns to ``fields`` and its slug as create_calendar chooses one."""
    try:
        with write_transaction():
            calendar.slug = _free_slug(slug, fields.get("name", calendar.name), except_id=calendar.id)
            for name, value in fields.items():
                setattr(calendar, name, value)
    except sa.exc.IntegrityError:
        raise SlugTaken(slug) from None


def _free_slug(chosen: str | None, name: str, except_id: int | None = None) -> str:
    """Return ``chosen`` if no other calendar has it (else raise SlugTaken), or a free one made from ``name``."""
    if chosen:
        if slug_taken(chosen, except_id):
            raise SlugTaken(chosen)
        return chosen
    base = slug = slugify(name)
    n = 2
    while slug_taken(slug, except_id):
        slug, n = f"{base}-{n}", n + 1
    return slug


def issue_link(
    calendar: Calendar,
    keys: LinkKeys,
    now: datetime,
    *,
    source: str,
    expires_at: datetime | None = None,
    **fields: Any,
) -> tuple[OneTimeLink, str]:
    """Make a one-time link on a calendar as its owner asks; return it with its token.

    Without ``expires_at`` it expires after the calendar's default time, if
    it has one. The change rules left None are the calendar's.
    """
    if expires_at is None and calendar.default_link_expiry_minutes:
        expires_at = now + timedelta(minutes=calendar.default_link_expiry_minutes)
    return links.issue_link(calendar, keys, now=now, expires_at=expires_at, source=source, **fields)


def bookings_of_owner(owner_id: int) -> list[tuple[Booking, str]]:
    """Return every booking on the owner's calendars, deleted (archived) ones too, with its calendar's name."""
    rows = db.session.execute(
        sa.select(Booking, Calendar.name)
        .join(Calendar)
        .where(Calendar.owner_id == owner_id)
        .order_by(Booking.start_at, Booking.id)
    )
    return [(booking, name) for booking, name in rows]


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


class CalendarGone(Exception):
    """The calendar is already archived or removed."""


class UpcomingChanged(Exception):
    """The calendar's upcoming bookings are no longer the ones its owner confirmed to cancel."""


@dataclass(frozen=True)
class Deletion:
    archived: bool  # False: removed outright, nothing had ever been on it
    cancelled: int


def tombstone_slug(calendar_id: int, slug: str) -> str:
    """The slug an archived calendar keeps: still readable in its records, never one a calendar can take.

    A live slug has no "~"; the id makes it unique.
    """
    suffix = f"~archived-{calendar_id}"
    return slug[: 80 - len(suffix)] + suffix


def has_history(calendar_id: int) -> bool:
    """Tell whether anything was ever booked or issued on a calendar: then it is archived, not removed."""
    booked = sa.select(Booking.id).where(Booking.calendar_id == calendar_id).exists()
    issued = sa.select(OneTimeLink.id).where(OneTimeLink.calendar_id == calendar_id).exists()
    return bool(db.session.scalar(sa.select(sa.or_(booked, issued))))


def delete_calendar(
    calendar_id: int, now: datetime, *, confirmed: Collection[int], message: str | None = None
) -> Deletion:
    """Delete a calendar as its owner confirmed, in one transaction.

    Each upcoming booking is cancelled as an owner cancel does (emails with
    METHOD:CANCEL, webhooks, reminders dropped). A calendar with history is
    then archived: its links are revoked (no link.revoked: the owner deleted
    the calendar, not each link), its slug freed, its bookings kept for the
    owner's records. One with nothing on it is removed. ``confirmed`` are the
    ids of the upcoming bookings the owner was shown; if others came since,
    nothing changes and UpcomingChanged is raised.

    Locks are taken in the order of a booking: the links, the calendar, its bookings.
    """
    with write_transaction():
        db.session.execute(
            sa.update(OneTimeLink)
            .where(OneTimeLink.calendar_id == calendar_id, OneTimeLink.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        turn = bookings.take_calendar_turn(calendar_id)
        if turn is None:
            raise CalendarGone
        # Stronger than the turn's lock: a new link or booking (whose foreign key
        # shares the calendar's row) waits until this is committed, on PostgreSQL.
        db.session.execute(sa.select(Calendar.id).where(Calendar.id == calendar_id).with_for_update())
        upcoming = bookings.bookings_of(calendar_id, now, upcoming=True, live=True)
        if {booking.id for booking in upcoming} != set(confirmed):
            raise UpcomingChanged
        for booking in upcoming:
            changes.cancel_locked(booking.id, now, by="owner", reason=message)
        if not has_history(calendar_id):
            db.session.execute(sa.delete(Calendar).where(Calendar.id == calendar_id))
            return Deletion(archived=False, cancelled=0)
        db.session.execute(
            sa.update(Calendar)
            .where(Calendar.id == calendar_id)
            .values(archived_at=now, slug=tombstone_slug(calendar_id, turn.slug))
        )
        return Deletion(archived=True, cancelled=len(upcoming))
