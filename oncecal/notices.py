"""Emails about bookings and accounts: queued as facts, rendered by the worker when it sends.

An outbox row holds what an email is about (the booking, its times and
SEQUENCE as they were at the change, the wording), not rendered text: the
booking's transaction stays short, and a database dump holds no password-reset
link, since the worker rebuilds that from the reset's nonce and the secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import render_template

from oncecal.extensions import db
from oncecal.models import Booking, Owner, PasswordReset, utcnow
from oncecal.services.bookings import change_policy
from oncecal.services.ics import booking_ics
from oncecal.services.mail import Email
from oncecal.services.tokens import LinkKeys
from oncecal.templating import (
    invitee_prefers_12_hour,
    long_date,
    owner_prefers_12_hour,
    time_range,
    zone_prefers_12_hour,
)
from oncecal.urls import base_url


class NoticeGone(LookupError):
    """What the email was about no longer exists (or its key was retired)."""


def booking_notice(
    booking: Booking, *, to_owner: bool, subject: str, headline: str, lines: list[str], method: str
) -> dict[str, Any]:
    """The outbox payload of an email about a booking, as the booking is now."""
    return {
        "to": booking.calendar.owner.email if to_owner else booking.invitee_email,
        "subject": subject,
        # The worker has no request to take the origin from: it is kept here.
        "base_url": base_url(),
        "booking": {
            "id": booking.id,
            "to_owner": to_owner,
            "headline": headline,
            "lines": lines,
            "method": method,
            "start_at": booking.start_at.isoformat(),
            "end_at": booking.end_at.isoformat(),
            "sequence": booking.sequence,
            "cancelled": booking.cancelled_at is not None,
            # The reader's clock, known now (the invitee's browser, in their own request), not at sending.
            "twelve_hour": owner_prefers_12_hour(booking.calendar)
            if to_owner
            else invitee_prefers_12_hour(booking.invitee_timezone),
        },
    }


def password_reset_notice(owner: Owner, reset: PasswordReset) -> dict[str, Any]:
    """The outbox payload of a password-reset email: the reset's id, never its token."""
    return {
        "to": owner.email,
        "subject": "Reset your OnceCal password",
        "base_url": base_url(),
        "password_reset": reset.id,
    }


def render(payload: dict[str, Any], keys: LinkKeys) -> Email:
    """Turn an outbox payload into the email to send; raise NoticeGone if its subject is gone."""
    if "booking" in payload:
        return _booking_email(payload, payload["booking"])
    if "password_reset" in payload:
        return _password_reset_email(payload, payload["password_reset"], keys)
    # Queued before emails were rendered by the worker: sent as they were made.
    return Email(
        to=payload["to"],
        subject=payload["subject"],
        text=payload["text"],
        html=payload["html"],
        ics=payload["ics"].encode() if payload.get("ics") else None,
        ics_method=payload.get("ics_method"),
    )


@dataclass(frozen=True)
class _BookingThen:
    """A booking with the times and SEQUENCE it had when the email was queued."""

    booking: Booking
    start_at: datetime
    end_at: datetime
    sequence: int
    cancelled_at: bool

    def __getattr__(self, name: str) -> Any:
        return getattr(self.booking, name)


def _booking_email(payload: dict[str, Any], facts: dict[str, Any]) -> Email:
    booking = db.session.get(Booking, facts["id"])
    if booking is None:
        raise NoticeGone(f"booking {facts['id']} no longer exists")
    then = _BookingThen(
        booking,
        datetime.fromisoformat(facts["start_at"]),
        datetime.fromisoformat(facts["end_at"]),
        facts["sequence"],
        facts["cancelled"],
    )
    calendar, owner, to_owner = booking.calendar, booking.calendar.owner, facts["to_owner"]
    zone = ZoneInfo(calendar.timezone if to_owner else booking.invitee_timezone)
    twelve_hour = facts.get("twelve_hour")
    if twelve_hour is None:  # queued before emails remembered their reader's clock
        twelve_hour = owner_prefers_12_hour(calendar) if to_owner else zone_prefers_12_hour(zone.key)
    base = payload.get("base_url") or base_url()
    action_url = (
        f"{base}/dashboard/calendars/{calendar.id}/bookings" if to_owner else f"{base}/b/{booking.ref}"
    )
    context = {
        "calendar": calendar,
        "owner": owner,
        "greeting": f"Hello {owner.name}," if to_owner else f"Hello {booking.invitee_name},",
        "headline": facts["headline"],
        "lines": facts["lines"],
        "when": f"{long_date(then.start_at, zone)}, {time_range(then.start_at, then.end_at, zone, twelve_hour)}"
        f" ({zone.key.replace('_', ' ')})",
        "action_url": action_url,
        "action_label": "See your bookings" if to_owner else _invitee_action(booking, then.cancelled_at),
    }
    method = facts["method"]
    return Email(
        to=payload["to"],
        subject=payload["subject"],
        text=render_template("emails/notice.txt", **context),
        html=render_template("emails/notice.html", **context),
        ics=booking_ics(then, method=method, manage_url=None if to_owner else action_url),  # type: ignore[arg-type]
        ics_method=method,
    )


def _invitee_action(booking: Booking, cancelled: bool) -> str:
    """What the invitee's button offers: only the changes still open when the email is sent."""
    policy = change_policy(booking, utcnow())
    if cancelled or not (policy.can_cancel or policy.can_reschedule):
        return "View the booking"
    if not policy.can_cancel:
        return "View or reschedule"
    if not policy.can_reschedule:
        return "View or cancel"
    return "View, reschedule or cancel"


def _password_reset_email(payload: dict[str, Any], reset_id: int, keys: LinkKeys) -> Email:
    reset = db.session.get(PasswordReset, reset_id)
    raw = keys.token_for(reset.nonce, reset.key_id) if reset is not None and reset.nonce else None
    if reset is None or raw is None:
        raise NoticeGone(f"password reset {reset_id} no longer exists or its key was retired")
    owner = db.session.get_one(Owner, reset.owner_id)
    url = f"{payload.get('base_url') or base_url()}/password/reset/{raw}"
    return Email(
        to=payload["to"],
        subject=payload["subject"],
        text=render_template("emails/password_reset.txt", owner=owner, url=url),
        html=render_template("emails/password_reset.html", owner=owner, url=url),
    )
