"""Booking rules: which slots a calendar offers and how a booking is written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased, make_transient_to_detached

from oncecal.db import refresh_from, write_transaction
from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink, new_booking_ref
from oncecal.services import webhooks
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
    params = {"calendar_id": calendar.id, "after": now - availability.buffer, "before": horizon}
    # A booking being moved does not stand in its own way.
    query = _BUSY if ignoring is None else _BUSY_BUT_ONE
    busy = [(start, end) for start, end in db.session.execute(query, {**params, "ignoring": ignoring})]
    return iter_slots(availability, busy, now)


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


# What a booking reads of its calendar under the lock: the rules it checks,
# the revision it raised, and what its events say.
_TURN = (
    Calendar.id,
    Calendar.owner_id,
    Calendar.name,
    Calendar.slug,
    Calendar.reminder_minutes,
    Calendar.bookings_revision,
    Calendar.timezone,
    Calendar.weekly_hours,
    Calendar.duration_minutes,
    Calendar.buffer_minutes,
    Calendar.min_notice_minutes,
    Calendar.days_ahead,
    Calendar.date_overrides,
)
_TAKE_TURN = (
    sa.update(Calendar)
    .where(Calendar.id == sa.bindparam("calendar_id"), Calendar.archived_at.is_(None))
    .values(bookings_revision=Calendar.bookings_revision + 1)
    .returning(*_TURN, webhooks.owner_has_endpoints("calendars.owner_id").label("webhooks"))
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
    the calendar is gone or archived), and brings the session's loaded copy up to date:
    the rules checked and the events sent are the calendar's at this
    moment. Executed as a plain Core statement: it is on every booking's
    path, and the ORM's bookkeeping would only cost. It also tells whether
    the owner has a webhook endpoint, so that the change's events need not ask.
    """
    turn = db.session.connection().execute(_TAKE_TURN, {"calendar_id": calendar_id}).first()
    if turn is None:
        return None
    refresh_from(_TURN, turn)
    if not turn.webhooks:
        webhooks.note_no_endpoints(turn.owner_id)
    return turn


@dataclass(frozen=True)
class _Claim:
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
    """SQL: no live booking of the calendar is in the way of a _Claim (its ``params``).

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


def _claim_time(calendar_id: int, start: datetime, now: datetime) -> _Claim:
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
    return _Claim(calendar_id, start, end, end + availability.buffer, start - availability.buffer)


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


def insert_booking(
    calendar_id: int,
    start: datetime,
    invitee: Invitee,
    *,
    form_id: str | None,
    now: datetime,
    link_id: int | None = None,
) -> Booking:
    """Check the slot and add the booking; call inside a write transaction.

    The row is written with one Core INSERT (that also checks the time is
    free), and the Booking returned is put in the session as loaded from
    it: no unit-of-work flush on the booking path.
    """
    claim = _claim_time(calendar_id, start, now)
    values = {
        "ref": new_booking_ref(),
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
    }
    booking_id = db.session.connection().execute(_INSERT_IF_FREE, {**values, **claim.params()}).scalar()
    if booking_id is None:
        raise SlotUnavailable
    booking = Booking(
        id=booking_id,
        cancelled_at=None,
        cancel_reason=None,
        cancelled_by=None,
        rescheduled_at=None,
        **values,
    )
    make_transient_to_detached(booking)
    db.session.add(booking)
    return booking


def book_calendar(
    calendar_id: int,
    start: datetime,
    invitee: Invitee,
    *,
    form_id: str | None,
    now: datetime,
    on_booked: Callable[[Booking], None] | None = None,
) -> Booking:
    """Book a slot on a calendar's public page (no link to use up).

    The same form sent again returns its booking; with another slot or
    email it raises FormAlreadyUsed (rule 8).
    """
    try:
        with write_transaction():
            if form_id and (replay := booking_for_form(form_id, start, invitee.email)) is not None:
                return replay
            booking = insert_booking(calendar_id, start, invitee, form_id=form_id, now=now)
            if on_booked is not None:
                on_booked(booking)
            return booking
    except (sa.exc.IntegrityError, SlotUnavailable):
        # Another transaction took the slot or this form id first: on
        # PostgreSQL a double click's twin can commit after the check above.
        if form_id and (replay := booking_for_form(form_id, start, invitee.email)) is not None:
            return replay
        raise SlotUnavailable from None


@dataclass(frozen=True)
class ChangeRules:
    """What an invitee of a link (or of the calendar's own pages) may change, until when."""

    allow_cancel: bool
    allow_reschedule: bool
    cutoff_hours: int  # changes close this long before the start; 0: at the start


def change_rules(calendar: Calendar, link: OneTimeLink | None) -> ChangeRules:
    """Return the link's rules where it sets them, else the calendar's."""
    if link is None:
        return ChangeRules(calendar.allow_cancel, calendar.allow_reschedule, calendar.change_cutoff_hours)
    return ChangeRules(
        calendar.allow_cancel if link.allow_cancel is None else link.allow_cancel,
        calendar.allow_reschedule if link.allow_reschedule is None else link.allow_reschedule,
        calendar.change_cutoff_hours if link.change_cutoff_hours is None else link.change_cutoff_hours,
    )


@dataclass(frozen=True)
class ChangePolicy:
    can_cancel: bool
    can_reschedule: bool
    # Why a change is closed, for the manage page; None when both are open.
    reason: str | None


def change_policy(booking: Booking, now: datetime) -> ChangePolicy:
    """Tell what the invitee may still change: the link's rules, else the calendar's."""
    calendar = booking.calendar
    rules = change_rules(calendar, booking.link)
    contact = calendar.owner.name
    if booking.cancelled_at is not None:
        return ChangePolicy(False, False, "This booking is cancelled.")
    if booking.start_at - timedelta(hours=rules.cutoff_hours) <= now:
        if rules.cutoff_hours == 0:
            return ChangePolicy(False, False, f"This meeting has started; please contact {contact}.")
        reason = f"Changes close {rules.cutoff_hours} hours before the start; please contact {contact}."
        return ChangePolicy(False, False, reason)
    if not (rules.allow_cancel or rules.allow_reschedule):
        return ChangePolicy(False, False, f"To change this booking, please contact {contact}.")
    # A refused cancel (or move) must say why even while the other change is open.
    if not rules.allow_cancel:
        return ChangePolicy(False, True, f"To cancel this booking, please contact {contact}.")
    if not rules.allow_reschedule:
        return ChangePolicy(True, False, f"To move this booking, please contact {contact}.")
    return ChangePolicy(True, True, None)


class ChangeRefused(Exception):
    """The invitee may not (or no longer) change this booking."""


def cancel_booking(
    booking: Booking,
    now: datetime,
    *,
    by: str,
    reason: str | None = None,
    on_cancelled: Callable[[Booking], None] | None = None,
) -> None:
    """Cancel a booking: its time is free again, its link stays used.

    The booking is read again inside a write transaction (row-locked on
    PostgreSQL): a request's earlier read may be stale by now, and on SQLite
    that read transaction could not be upgraded to a write.
    """
    with write_transaction():
        take_calendar_turn(booking.calendar_id)
        cancel_locked(booking.id, now, by=by, reason=reason, on_cancelled=on_cancelled)


def cancel_locked(
    booking_id: int,
    now: datetime,
    *,
    by: str,
    reason: str | None = None,
    on_cancelled: Callable[[Booking], None] | None = None,
) -> None:
    """Cancel a booking inside a write transaction that has taken its calendar's turn.

    The booking is locked after the calendar, the lock order of every booking change.
    """
    booking = db.session.get_one(Booking, booking_id, with_for_update=True, populate_existing=True)
    if booking.cancelled_at is not None:
        return
    if by == "invitee" and not change_policy(booking, now).can_cancel:
        raise ChangeRefused
    booking.cancelled_at = now
    booking.cancelled_by = by
    booking.cancel_reason = reason or None
    booking.sequence += 1
    if on_cancelled is not None:
        on_cancelled(booking)


def reschedule_booking(
    booking_id: int,
    start: datetime,
    now: datetime,
    on_rescheduled: Callable[[Booking], None] | None = None,
) -> Booking:
    """Move a booking to a new slot in one transaction: the old time is freed as the new one is taken.

    It never uses a one-time link. Raises ChangeRefused or SlotUnavailable;
    either way the booking stays as it was.
    """
    try:
        with write_transaction():
            booking = db.session.get_one(Booking, booking_id)
            if not change_policy(booking, now).can_reschedule:
                raise ChangeRefused
            if start == booking.start_at:
                raise SlotUnavailable  # its own time: no move
            claim = _claim_time(booking.calendar_id, start, now)
            if not db.session.scalar(_FREE_BUT_ONE, {**claim.params(), "moving": booking.id}):
                raise SlotUnavailable
            # With the calendar locked, lock the booking (in that order) and look
            # again: a cancel, or this same move sent twice, may have committed
            # since the first read (PostgreSQL).
            db.session.refresh(booking, with_for_update=True)
            if not change_policy(booking, now).can_reschedule:
                raise ChangeRefused
            if start == booking.start_at:
                raise SlotUnavailable  # moved there meanwhile: no second move, no second notice
            booking.start_at, booking.end_at, booking.blocked_until = start, claim.end, claim.blocked_until
            booking.sequence += 1
            booking.rescheduled_at = now
            db.session.flush()
            if on_rescheduled is not None:
                on_rescheduled(booking)
            return booking
    except sa.exc.IntegrityError:
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
