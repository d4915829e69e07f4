"""Booking: which slots a calendar offers and how a booking is written.

How a booking is written: ``book_calendar`` (a calendar's own page) or
oncecal.services.links.consume_link_and_book (a one-time link) opens the one
write transaction; ``insert_booking`` takes the calendar's turn, checks its
rules, writes the row with the statement that checks the time is free, and
records the booking.created event; the caller gets a ``Booked`` back.
Changes to a booking (cancel, reschedule) are in oncecal.services.changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from oncecal import events
from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import Booking, Calendar, new_booking_ref
from oncecal.services import busycopy
from oncecal.services.slots import Availability, is_available, iter_slots, parse_overrides, parse_weekly_hours


class SlotUnavailable(Exception):
    """The chosen slot is not (or no longer) bookable."""


class FormAlreadyUsed(Exception):
    """The form id already made a booking, for another slot or email: a new attempt (rule 8)."""


@dataclass(frozen=True)
class Invitee:
    name: str
    email: str
    timezone: str
    notes: str | None = None
    # The clock their browser reads (12-hour or not), for their emails; None: their zone's.
    twelve_hour: bool | None = None


@dataclass(frozen=True)
class Booked:
    """A booking as it was written: what the caller shows (or redirects to)."""

    id: int
    ref: str
    start: datetime
    end: datetime

    @classmethod
    def of(cls, booking: Booking) -> Booked:
        return cls(booking.id, booking.ref, booking.start_at, booking.end_at)


def availability_of(calendar: Calendar | sa.Row[Any]) -> Availability:
    """Return a calendar's booking rules as the slot computation takes them.

    ``calendar`` is its model, or the row take_calendar_turn returns.
    """
    return Availability(
        timezone=ZoneInfo(calendar.timezone),
        weekly=parse_weekly_hours(calendar.weekly_hours),
        duration=timedelta(minutes=calendar.duration_minutes),
        buffer=timedelta(minutes=calendar.buffer_minutes),
        notice=timedelta(minutes=calendar.min_notice_minutes),
        days_ahead=calendar.days_ahead,
        overrides=parse_overrides(calendar.date_overrides or {}),
    )


def open_slots(calendar: Calendar, now: datetime, ignoring: int | None = None) -> list[datetime]:
    """Return the calendar's bookable slot starts from now to its horizon."""
    return list(iter_open_slots(calendar, now, ignoring))


# The live bookings between two instants, built once (every booking page
# runs it): reusing the statement skips rebuilding it and its cache key.
_BUSY = sa.select(Booking.start_at, Booking.end_at).where(
    Booking.calendar_id == sa.bindparam("calendar_id"),
    Booking.cancelled_at.is_(None),
    Booking.end_at > sa.bindparam("after", type_=Booking.end_at.type),
    Booking.start_at < sa.bindparam("before", type_=Booking.start_at.type),
)
_BUSY_BUT_ONE = _BUSY.where(Booking.id != sa.bindparam("ignoring"))


def iter_open_slots(calendar: Calendar, now: datetime, ignoring: int | None = None) -> Iterator[datetime]:
    """Yield the calendar's bookable slot starts lazily: a page showing one week stops after it.

    The bookings are read at once; only the slot computation is lazy.
    """
    availability = availability_of(calendar)
    horizon = now + timedelta(days=availability.days_ahead + 2)
    after = now - availability.buffer
    params = {"calendar_id": calendar.id, "after": after, "before": horizon}
    # A booking being moved does not stand in its own way.
    query = _BUSY if ignoring is None else _BUSY_BUT_ONE
    busy = [(start, end) for start, end in db.session.execute(query, {**params, "ignoring": ignoring})]
    # The owner's other calendars: one more kind of busy time, buffered like a
    # booking, read nine days at a time as the slots get there.
    others = busycopy.iter_busy(calendar.id, availability, after, horizon) if calendar.checks_busy else ()
    return iter_slots(availability, busy, now, more_busy=others)


def booking_for_form(form_id: str, start: datetime, email: str) -> Booking | None:
    """Return the booking a form id made if it is sent again with its slot and email (PRODUCT.md rule 8).

    None when the form made no booking. Raises FormAlreadyUsed when it made
    one for another slot or email: whoever sends that is not shown the
    booking. The email is compared as typed again, whatever its case.
    """
    booking = db.session.scalar(sa.select(Booking).where(Booking.form_id == form_id))
    if booking is None:
        return None
    if booking.start_at != start or booking.invitee_email.casefold() != email.casefold():
        raise FormAlreadyUsed
    return booking


# What a booking change reads of its calendar under the lock: the rules it
# checks, the owner its event is for, the reminder it sets.
_TURN = (
    Calendar.id,
    Calendar.owner_id,
    Calendar.slug,
    Calendar.reminder_minutes,
    Calendar.timezone,
    Calendar.weekly_hours,
    Calendar.duration_minutes,
    Calendar.buffer_minutes,
    Calendar.min_notice_minutes,
    Calendar.days_ahead,
    Calendar.date_overrides,
    Calendar.checks_busy,
)
_TAKE_TURN = (
    sa.update(Calendar)
    .where(Calendar.id == sa.bindparam("calendar_id"), Calendar.archived_at.is_(None))
    .values(bookings_revision=Calendar.bookings_revision + 1)
    .returning(*_TURN)
)


def take_calendar_turn(calendar_id: int) -> sa.Row[Any] | None:
    """Queue this write transaction behind any other on the calendar's bookings, and count it.

    The UPDATE row-locks the calendar on PostgreSQL until commit, so changes
    to one calendar's bookings go one at a time (two inserts of overlapping
    rows could otherwise deadlock on the exclusion constraint, and the loser
    would see an error, not a 409); SQLite's BEGIN IMMEDIATE already does
    that. The revision it raises tells kept booking pages they are stale.
    Lock order: the link being used (if any), the calendar, then the booking.

    Returns the calendar's rules as they are now, under that lock (None if
    the calendar is gone or archived): the rules checked are the calendar's
    at this moment, whatever the request read before.
    """
    return db.session.connection().execute(_TAKE_TURN, {"calendar_id": calendar_id}).first()


def reminder_due_at(reminder_minutes: int | None, start: datetime, now: datetime) -> datetime | None:
    """When the invitee of a booking starting at ``start``, made or moved ``now``, is reminded.

    None when the calendar sends no reminder, or when that time has passed
    already: a booking made at short notice gets its confirmation only.
    """
    if not reminder_minutes:
        return None
    at = start - timedelta(minutes=reminder_minutes)
    return at if at > now else None


@dataclass(frozen=True)
class Claim:
    """A time that the calendar's rules offer: what is left is that no live booking is in its way."""

    calendar_id: int
    start: datetime
    end: datetime
    blocked_until: datetime  # the end plus the buffer: the range no other booking may touch
    free_from: datetime  # the start less the buffer: where no other booking may still run

    def params(self) -> dict[str, Any]:
        return {
            "calendar_id": self.calendar_id,
            "start_at": self.start,
            "blocked_until": self.blocked_until,
            "free_from": self.free_from,
        }


def _free(*, but_one: bool = False) -> sa.ColumnElement[bool]:
    """SQL: no live booking of the calendar is in the way of a Claim (its ``params``).

    In the way is a booking that starts before the claim's blocked range
    ends, and either still runs at ``free_from`` (the buffer as the
    calendar has it now) or has its own blocked range (with the buffer of
    the time it was made) reach the claim's start. ``but_one``: the
    booking ``moving`` does not stand in its own way.
    """
    other = aliased(Booking, name="other")
    in_the_way = sa.select(other.id).where(
        other.calendar_id == sa.bindparam("calendar_id"),
        other.cancelled_at.is_(None),
        other.start_at < sa.bindparam("blocked_until", type_=Booking.blocked_until.type),
        sa.or_(
            other.end_at > sa.bindparam("free_from", type_=Booking.end_at.type),
            other.blocked_until > sa.bindparam("start_at", type_=Booking.start_at.type),
        ),
    )
    if but_one:
        in_the_way = in_the_way.where(other.id != sa.bindparam("moving"))
    return ~in_the_way.exists()


def claim_time(calendar_id: int, start: datetime, now: datetime) -> tuple[Claim, sa.Row[Any]]:
    """Take the calendar's turn and check its rules offer ``start``; call inside a write transaction.

    Whether other bookings are in the way is checked by the statement that
    writes (``_free``): that check is what SQLite relies on (its BEGIN
    IMMEDIATE makes it race-free); PostgreSQL's exclusion constraint checks
    again.
    """
    rules = take_calendar_turn(calendar_id)
    if rules is None:
        raise SlotUnavailable
    availability = availability_of(rules)
    # The rules alone (no bookings): an offered time, after the notice, before the horizon.
    if not is_available(availability, [], now, start):
        raise SlotUnavailable
    end = start + availability.duration
    # The newest synced copy of the owner's other calendars (oncecal.services.busycopy).
    if rules.checks_busy and busycopy.in_the_way(
        calendar_id, availability.timezone, start, end, availability.buffer
    ):
        raise SlotUnavailable
    return Claim(calendar_id, start, end, end + availability.buffer, start - availability.buffer), rules


# The booking's row, written only if its time is free: one statement checks and writes.
_BOOKING_COLUMNS = (
    "ref",
    "calendar_id",
    "link_id",
    "start_at",
    "end_at",
    "blocked_until",
    "invitee_name",
    "invitee_email",
    "invitee_notes",
    "invitee_timezone",
    "form_id",
    "created_at",
    "sequence",
    "remind_at",
)
_INSERT_IF_FREE = (
    sa.insert(Booking)
    .from_select(
        _BOOKING_COLUMNS,
        sa.select(
            *(sa.bindparam(name, type_=Booking.__table__.c[name].type) for name in _BOOKING_COLUMNS)
        ).where(_free()),
    )
    .returning(Booking.id)
)
_FREE_BUT_ONE = sa.select(_free(but_one=True))


def free_for_move(claim: Claim, booking_id: int) -> bool:
    """Tell whether the claimed time is free of every live booking but ``booking_id`` (the one moving)."""
    return bool(db.session.scalar(_FREE_BUT_ONE, {**claim.params(), "moving": booking_id}))


def insert_booking(
    calendar_id: int,
    start: datetime,
    invitee: Invitee,
    *,
    form_id: str | None,
    now: datetime,
    link_id: int | None = None,
    link_uses: int | None = None,
) -> Booked:
    """Check the slot, write the booking and its booking.created event; call inside a write transaction.

    ``link_uses``: the uses of the link it used up, as the event tells them.
    """
    claim, rules = claim_time(calendar_id, start, now)
    ref = new_booking_ref()
    values = {
        "ref": ref,
        "calendar_id": calendar_id,
        "link_id": link_id,
        "start_at": start,
        "end_at": claim.end,
        "blocked_until": claim.blocked_until,
        "invitee_name": invitee.name,
        "invitee_email": invitee.email,
        "invitee_notes": invitee.notes or None,
        "invitee_timezone": invitee.timezone,
        "form_id": form_id,
        "created_at": now,
        "sequence": 0,
        "remind_at": reminder_due_at(rules.reminder_minutes, start, now),
    }
    booking_id = db.session.connection().execute(_INSERT_IF_FREE, {**values, **claim.params()}).scalar()
    if booking_id is None:
        raise SlotUnavailable
    data: dict[str, Any] = {
        "booking": events.booking_facts(start_at=start, end_at=claim.end, sequence=0),
        "twelve_hour": invitee.twelve_hour,
    }
    if link_id is not None:
        data["link_uses"] = link_uses
    events.record(
        "booking.created", owner_id=rules.owner_id, now=now, booking_id=booking_id, link_id=link_id, data=data
    )
    return Booked(booking_id, ref, start, claim.end)


def book_calendar(
    calendar_id: int,
    start: datetime,
    invitee: Invitee,
    *,
    form_id: str | None,
    now: datetime,
) -> Booked:
    """Book a slot on a calendar's public page (no link to use up).

    The same form sent again returns its booking; with another slot or
    email it raises FormAlreadyUsed (rule 8).
    """
    try:
        with write_transaction():
            if form_id and (replay := booking_for_form(form_id, start, invitee.email)) is not None:
                return Booked.of(replay)
            return insert_booking(calendar_id, start, invitee, form_id=form_id, now=now)
    except (sa.exc.IntegrityError, SlotUnavailable):
        # Another transaction took the slot or this form id first: on
        # PostgreSQL a double click's twin can commit after the check above.
        if form_id and (replay := booking_for_form(form_id, start, invitee.email)) is not None:
            return Booked.of(replay)
        raise SlotUnavailable from None


def bookings_of(calendar_id: int, now: datetime, *, upcoming: bool, live: bool = False) -> list[Booking]:
    """Return a calendar's upcoming (soonest first) or past (latest first) bookings; ``live``: not cancelled."""
    query = sa.select(Booking).where(Booking.calendar_id == calendar_id)
    if live:
        query = query.where(Booking.cancelled_at.is_(None))
    if upcoming:
        query = query.where(Booking.end_at > now).order_by(Booking.start_at)
    else:
        query = query.where(Booking.end_at <= now).order_by(Booking.start_at.desc())
    return list(db.session.scalars(query))
