"""What a booking change sends: webhooks and emails, queued in the change's own transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import render_template

from oncecal.models import Booking, OneTimeLink, utcnow
from oncecal.runtime import base_url
from oncecal.serializers import booking_json, link_json
from oncecal.services.ics import booking_ics
from oncecal.services.mail import Email, queue_email
from oncecal.services.outbox import cancel_pending
from oncecal.services.webhooks import record_event
from oncecal.templating import clock, long_date


def _link(link: OneTimeLink | None) -> dict[str, Any] | None:
    return link_json(link, utcnow()) if link is not None else None


def _when(booking: Booking, zone: str) -> str:
    tz = ZoneInfo(zone)
    return f"{long_date(booking.start_at, tz)}, {clock(booking.start_at, tz)}–{clock(booking.end_at, tz)} ({zone.replace('_', ' ')})"


def _email(
    booking: Booking, *, to_owner: bool, subject: str, headline: str, lines: list[str], method: str
) -> Email:
    calendar = booking.calendar
    owner = calendar.owner
    context = {
        "calendar": calendar,
        "owner": owner,
        "greeting": f"Hello {owner.name}," if to_owner else f"Hello {booking.invitee_name},",
        "headline": headline,
        "lines": lines,
        "when": _when(booking, calendar.timezone if to_owner else booking.invitee_timezone),
        "action_url": f"{base_url()}/dashboard/calendars/{calendar.id}/bookings"
        if to_owner
        else f"{base_url()}/b/{booking.ref}",
        "action_label": "See your bookings"
        if to_owner
        else ("View the booking" if booking.cancelled_at else "View, reschedule or cancel"),
    }
    return Email(
        to=owner.email if to_owner else booking.invitee_email,
        subject=subject,
        text=render_template("emails/notice.txt", **context),
        html=render_template("emails/notice.html", **context),
        ics=booking_ics(booking, method=method, manage_url=None if to_owner else context["action_url"]),
        ics_method=method,
    )


def _send_both(
    booking: Booking,
    event: str,
    invitee: tuple[str, str, list[str]],
    owner: tuple[str, str, list[str]],
    method: str,
    now: datetime,
) -> None:
    for to_owner, (subject, headline, lines) in ((False, invitee), (True, owner)):
        queue_email(
            _email(
                booking, to_owner=to_owner, subject=subject, headline=headline, lines=lines, method=method
            ),
            event_type=event,
            send_at=now,
            now=now,
        )


def _reminder_id(booking: Booking) -> str:
    return f"reminder-{booking.id}"


def _queue_reminder(booking: Booking, now: datetime) -> None:
    minutes = booking.calendar.reminder_minutes
    if not minutes:
        return
    send_at = booking.start_at - timedelta(minutes=minutes)
    if send_at <= now:
        return
    email = _email(
        booking,
        to_owner=False,
        subject=f"Reminder: {booking.calendar.name} with {booking.calendar.owner.name}",
        headline="A reminder of your meeting",
        lines=[],
        method="REQUEST",
    )
    queue_email(
        email, event_type="booking.reminder", event_id=_reminder_id(booking), send_at=send_at, now=now
    )


def booking_created(booking: Booking) -> None:
    """Queue booking.created, the two confirmation emails and the reminder."""
    now = utcnow()
    record_event(
        booking.calendar.owner_id, "booking.created", now, _link(booking.link), booking_json(booking)
    )
    calendar, owner = booking.calendar, booking.calendar.owner
    _send_both(
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
    _queue_reminder(booking, now)


def booking_cancelled(booking: Booking) -> None:
    """Queue booking.cancelled, the two cancellation emails, and drop the reminder."""
    now = utcnow()
    record_event(
        booking.calendar.owner_id, "booking.cancelled", now, _link(booking.link), booking_json(booking)
    )
    by_owner = booking.cancelled_by == "owner"
    reason = [f"Message: {booking.cancel_reason}"] if booking.cancel_reason else []
    calendar, owner = booking.calendar, booking.calendar.owner
    _send_both(
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
    cancel_pending(_reminder_id(booking))


def booking_rescheduled(booking: Booking) -> None:
    """Queue booking.rescheduled, the two update emails and a new reminder."""
    now = utcnow()
    record_event(
        booking.calendar.owner_id, "booking.rescheduled", now, _link(booking.link), booking_json(booking)
    )
    calendar, owner = booking.calendar, booking.calendar.owner
    _send_both(
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
    _queue_reminder(booking, now)


def link_revoked(link: OneTimeLink) -> None:
    """Queue link.revoked."""
    record_event(link.calendar.owner_id, "link.revoked", utcnow(), _link(link), None)
