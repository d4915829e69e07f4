"""Changes to a booking: cancel and reschedule, each in one write transaction with its event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oncecal import events
from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import Booking
from oncecal.services.bookings import (
    Booked,
    SlotUnavailable,
    claim_time,
    free_for_move,
    reminder_due_at,
    take_calendar_turn,
)
from oncecal.services.policy import change_policy


class ChangeRefused(Exception):
    """The invitee may not (or no longer) change this booking."""


def cancel_booking(
    booking_id: int, now: datetime, *, by: str, reason: str | None = None, twelve_hour: bool | None = None
) -> None:
    """Cancel a booking: its time is free again, its link stays used; records booking.cancelled.

    The booking is read again inside the write transaction (row-locked on
    PostgreSQL): a request's earlier read may be stale by now, and on SQLite
    that read transaction could not be upgraded to a write. ``twelve_hour``:
    the clock of the invitee cancelling, for their email.
    """
    with write_transaction():
        calendar_id = db.session.execute(
            sa.select(Booking.calendar_id).where(Booking.id == booking_id)
        ).scalar_one()
        take_calendar_turn(calendar_id)
        cancel_locked(booking_id, now, by=by, reason=reason, twelve_hour=twelve_hour)


def cancel_locked(
    booking_id: int, now: datetime, *, by: str, reason: str | None = None, twelve_hour: bool | None = None
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
    booking.remind_at = None
    _record("booking.cancelled", booking, now, twelve_hour)


def _record(event_type: str, booking: Booking, now: datetime, twelve_hour: bool | None) -> None:
    """Record a change's event, with the booking and its link as they are now."""
    facts = events.booking_facts(
        start_at=booking.start_at,
        end_at=booking.end_at,
        sequence=booking.sequence,
        cancelled_at=booking.cancelled_at,
        cancelled_by=booking.cancelled_by,
        cancel_reason=booking.cancel_reason,
    )
    data: dict[str, Any] = {"booking": facts, "twelve_hour": twelve_hour}
    if booking.link is not None:
        data["link_uses"] = booking.link.uses
    events.record(
        event_type,
        owner_id=booking.calendar.owner_id,
        now=now,
        booking_id=booking.id,
        link_id=booking.link_id,
        data=data,
    )


def reschedule_booking(
    booking_id: int, start: datetime, now: datetime, *, twelve_hour: bool | None = None
) -> Booked:
    """Move a booking to a new slot in one transaction: the old time is freed as the new one is taken.

    It never uses a one-time link. Raises ChangeRefused or SlotUnavailable;
    either way the booking stays as it was. Records booking.rescheduled.
    """
    try:
        with write_transaction():
            booking = db.session.get_one(Booking, booking_id)
            if not change_policy(booking, now).can_reschedule:
                raise ChangeRefused
            if start == booking.start_at:
                raise SlotUnavailable  # its own time: no move
            claim, rules = claim_time(booking.calendar_id, start, now)
            if not free_for_move(claim, booking.id):
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
            booking.remind_at = reminder_due_at(rules.reminder_minutes, start, now)
            db.session.flush()
            _record("booking.rescheduled", booking, now, twelve_hour)
            return Booked.of(booking)
    except sa.exc.IntegrityError:
        raise SlotUnavailable from None
