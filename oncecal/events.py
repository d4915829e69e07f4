"""What a booking change sends: webhooks and emails, queued in the change's own transaction.

Only facts are queued here (oncecal.notices); the worker renders the emails
and their .ics after commit, off the booking's hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from oncecal.models import Booking, OneTimeLink, utcnow
from oncecal.notices import booking_notice
from oncecal.serializers import booking_json, link_json
from oncecal.services import outbox
from oncecal.services.mail import email_message
from oncecal.services.outbox import cancel_pending
from oncecal.services.webhooks import record_event
from oncecal.urls import base_url


def _link(link: OneTimeLink | None) -> Callable[[], dict[str, Any]] | None:
    """The link object of an event, made only if an endpoint will get it."""
    return None if link is None else lambda: link_json(link, utcnow(), with_url=False)


def _booking(booking: Booking) -> Callable[[], dict[str, Any]]:
    return lambda: booking_json(booking)


def _both(
    booking: Booking,
    event: str,
    invitee: tuple[str, str, list[str]],
    owner: tuple[str, str, list[str]],
    method: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """The outbox rows of the emails to the invitee and to the owner."""
    return [
        email_message(
            booking_notice(
                booking, to_owner=to_owner, subject=subject, headline=headline, lines=lines, method=method
            ),
            owner_id=booking.calendar.owner_id,
            event_type=event,
            send_at=now,
            now=now,
        )
        for to_owner, (subject, headline, lines) in ((False, invitee), (True, owner))
    ]


def _reminder_id(booking: Booking) -> str:
    return f"reminder-{booking.id}"


def _reminder(booking: Booking, now: datetime) -> list[dict[str, Any]]:
    """The outbox row of the reminder email, if the calendar sends one and its time is ahead."""
    minutes = booking.calendar.reminder_minutes
    if not minutes:
        return []
    send_at = booking.start_at - timedelta(minutes=minutes)
    if send_at <= now:
        return []
    notice = booking_notice(
        booking,
        to_owner=False,
        subject=f"Reminder: {booking.calendar.name} with {booking.calendar.owner.name}",
        headline="A reminder of your meeting",
        lines=[],
        method="REQUEST",
    )
    return [
        email_message(
            notice,
            owner_id=booking.calendar.owner_id,
            event_type="booking.reminder",
            event_id=_reminder_id(booking),
            send_at=send_at,
            now=now,
        )
    ]


def booking_created(booking: Booking) -> None:
    """Queue booking.created, the two confirmation emails and the reminder."""
    now = utcnow()
    record_event(
        booking.calendar.owner_id, "booking.created", now, _link(booking.link), _booking(booking), base_url()
    )
    calendar, owner = booking.calendar, booking.calendar.owner
    emails = _both(
        booking,
        "booking.created",
        (
            f"Confirmed: {calendar.name} with {owner.name}",
            "Your booking is confirmed",
            ["The calendar invite is attached."],
        ),
        (
            f"New booking: {booking.invitee_name}",
            f"{booking.invitee_name} ({booking.invitee_email}) booked a time",
            [f"“{booking.invitee_notes}”"] if booking.invitee_notes else [],
        ),
        "REQUEST",
        now,
    )
    outbox.add(emails + _reminder(booking, now))


def booking_cancelled(booking: Booking) -> None:
    """Queue booking.cancelled, the two cancellation emails, and drop the reminder."""
    now = utcnow()
    record_event(
        booking.calendar.owner_id,
        "booking.cancelled",
        now,
        _link(booking.link),
        _booking(booking),
        base_url(),
    )
    by_owner = booking.cancelled_by == "owner"
    reason = [f"Message: {booking.cancel_reason}"] if booking.cancel_reason else []
    calendar, owner = booking.calendar, booking.calendar.owner
    emails = _both(
        booking,
        "booking.cancelled",
        (
            f"Cancelled: {calendar.name} with {owner.name}",
            f"{owner.name} cancelled your meeting" if by_owner else "Your meeting is cancelled",
            reason,
        ),
        (
            f"Cancelled: {booking.invitee_name}",
            "You cancelled this booking" if by_owner else f"{booking.invitee_name} cancelled",
            reason,
        ),
        "CANCEL",
        now,
    )
    outbox.add(emails)
    cancel_pending(_reminder_id(booking))


def booking_rescheduled(booking: Booking) -> None:
    """Queue booking.rescheduled, the two update emails and a new reminder."""
    now = utcnow()
    record_event(
        booking.calendar.owner_id,
        "booking.rescheduled",
        now,
        _link(booking.link),
        _booking(booking),
        base_url(),
    )
    calendar, owner = booking.calendar, booking.calendar.owner
    emails = _both(
        booking,
        "booking.rescheduled",
        (
            f"Moved: {calendar.name} with {owner.name}",
            "Your meeting has a new time",
            ["The updated invite is attached."],
        ),
        (f"Moved: {booking.invitee_name}", f"{booking.invitee_name} moved their booking", []),
        "REQUEST",
        now,
    )
    cancel_pending(_reminder_id(booking))
    outbox.add(emails + _reminder(booking, now))


def link_revoked(link: OneTimeLink) -> None:
    """Queue link.revoked."""
    record_event(link.calendar.owner_id, "link.revoked", utcnow(), _link(link), None, base_url())
