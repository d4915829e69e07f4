"""From events to deliveries: what the worker makes of each event, and the reminders it finds due.

An event (oncecal.events) becomes its deliveries in one transaction: the two
emails of a booking change, one webhook call per live endpoint of its owner,
the write into the connected calendar that receives the calendar's bookings,
the email of a password reset. Each delivery is then sent and retried on its
own (oncecal.services.outbox). Reminders are not events: the worker finds
them from the bookings whose ``remind_at`` has come.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oncecal.asof import as_of
from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import Booking, Event, OneTimeLink, Owner, PasswordReset
from oncecal.serializers import booking_json, iso, link_json
from oncecal.services import mail, outbox, writeback
from oncecal.services.webhooks import EVENTS as WEBHOOK_EVENTS
from oncecal.services.webhooks import live_endpoints
from oncecal.text import as_one_line
from oncecal.urls import base_url


def booking_then(booking: Booking, facts: dict[str, Any]) -> Booking:
    """The booking with the times, SEQUENCE and cancellation an event kept of it."""
    return as_of(
        booking,
        start_at=datetime.fromisoformat(facts["start_at"]),
        end_at=datetime.fromisoformat(facts["end_at"]),
        sequence=facts["sequence"],
        cancelled_at=datetime.fromisoformat(facts["cancelled_at"]) if facts["cancelled_at"] else None,
        cancelled_by=facts["cancelled_by"],
        cancel_reason=facts["cancel_reason"],
    )


def _link_then(link: OneTimeLink, data: dict[str, Any], booking: Booking | None) -> OneTimeLink:
    kept: dict[str, Any] = {}
    if "link_uses" in data:
        kept["uses"] = data["link_uses"]
    if data.get("link_revoked_at"):
        kept["revoked_at"] = datetime.fromisoformat(data["link_revoked_at"])
    if booking is not None:
        kept["bookings"] = [booking]  # the link's latest booking, as the event saw it
    return as_of(link, **kept)


@dataclass(frozen=True)
class _Words:
    """What the two emails of a booking event say: subject, headline and lines, to the invitee and the owner."""

    invitee: tuple[str, str, list[str]]
    owner: tuple[str, str, list[str]]
    method: str


def _words(event_type: str, booking: Booking) -> _Words:
    calendar, owner = booking.calendar, booking.calendar.owner
    if event_type == "booking.created":
        notes = [f"“{booking.invitee_notes}”"] if booking.invitee_notes else []
        return _Words(
            (
                f"Confirmed: {calendar.name} with {owner.name}",
                "Your booking is confirmed",
                ["The calendar invite is attached."],
            ),
            (
                f"New booking: {booking.invitee_name}",
                f"{booking.invitee_name} ({booking.invitee_email}) booked a time",
                notes,
            ),
            "REQUEST",
        )
    if event_type == "booking.rescheduled":
        return _Words(
            (
                f"Moved: {calendar.name} with {owner.name}",
                "Your meeting has a new time",
                ["The updated invite is attached."],
            ),
            (f"Moved: {booking.invitee_name}", f"{booking.invitee_name} moved their booking", []),
            "REQUEST",
        )
    by_owner = booking.cancelled_by == "owner"
    reason = [f"Message: {booking.cancel_reason}"] if booking.cancel_reason else []
    return _Words(
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
    )


def _booking_emails(event: Event, booking: Booking, now: datetime) -> list[dict[str, Any]]:
    """The invitee's email and the owner's, each in its reader's clock."""
    words = _words(event.type, booking)
    rows = []
    for to_owner, (subject, headline, lines) in ((False, words.invitee), (True, words.owner)):
        notice = mail.booking_notice(
            booking,
            to_owner=to_owner,
            subject=subject,
            headline=headline,
            lines=lines,
            method=words.method,
            twelve_hour=None if to_owner else event.data.get("twelve_hour"),
            base=event.data["base_url"],
        )
        rows.append(
            mail.email_delivery(
                notice, owner_id=event.owner_id, event_type=event.type, event_id=event.event_id, now=now
            )
        )
    return rows


def _webhooks(event: Event, booking: Booking | None, now: datetime) -> list[dict[str, Any]]:
    if event.type not in WEBHOOK_EVENTS:
        return []
    endpoints = live_endpoints(event.owner_id)
    if not endpoints:
        return []
    link = db.session.get(OneTimeLink, event.link_id) if event.link_id else None
    body = {
        "id": event.event_id,
        "event": event.type,
        "created_at": iso(event.created_at),
        # The link's status as it was at the event.
        "link": link_json(_link_then(link, event.data, booking), event.created_at, with_url=False)
        if link
        else None,
        "booking": booking_json(booking) if booking else None,
    }
    return [
        outbox.message(
            "webhook",
            event_id=event.event_id,
            event_type=event.type,
            owner_id=event.owner_id,
            # The origin the link's url is rebuilt on when sending: kept beside the body, not sent.
            payload={**body, "base_url": event.data["base_url"]},
            now=now,
            endpoint_id=endpoint_id,
        )
        for endpoint_id in endpoints
    ]


def _password_reset_email(event: Event, now: datetime) -> list[dict[str, Any]]:
    owner = db.session.get(Owner, event.owner_id)
    reset = db.session.get(PasswordReset, event.data["password_reset"])
    if owner is None or reset is None:
        return []
    notice = mail.password_reset_notice(owner, reset, base=event.data["base_url"])
    return [
        mail.email_delivery(
            notice, owner_id=owner.id, event_type=event.type, event_id=event.event_id, now=now
        )
    ]


def deliveries_of(event: Event, now: datetime) -> list[dict[str, Any]]:
    """Return the outbox rows an event makes: its emails and one webhook call per live endpoint."""
    if event.type == "password.reset":
        return _password_reset_email(event, now)
    booking = None
    if event.booking_id is not None:
        row = db.session.get(Booking, event.booking_id)
        if row is None:
            return []
        booking = booking_then(row, event.data["booking"])
    if booking is None:
        return _webhooks(event, None, now)
    return (
        _booking_emails(event, booking, now)
        + _webhooks(event, booking, now)
        + writeback.deliveries(event, booking, now)
    )


_PENDING = sa.select(Event).where(Event.fanned_out_at.is_(None)).order_by(Event.id).limit(1)
_ANY_PENDING = sa.select(Event.id).where(Event.fanned_out_at.is_(None)).limit(1)


def fan_out_next(now: datetime) -> Event | None:
    """Turn the oldest event without deliveries into its deliveries; return it, or None if none waits.

    One transaction: the deliveries exist exactly when the event is marked
    done. An event whose deliveries cannot be made is marked done with its
    error (logged by the caller), so that it does not stop the events after it.
    """
    # A read first: an idle worker takes no write lock (SQLite has one for all).
    if db.session.scalar(_ANY_PENDING) is None:
        db.session.rollback()
        return None
    with write_transaction():
        query = (
            _PENDING.with_for_update(skip_locked=True) if db.engine.dialect.name == "postgresql" else _PENDING
        )
        event = db.session.scalar(query)
        if event is None:
            return None
        try:
            with db.session.begin_nested():
                outbox.add(deliveries_of(event, now))
        except Exception as failure:
            event.error = as_one_line(f"{type(failure).__name__}: {failure}")[:500]
        event.fanned_out_at = now
        return event


def _origin_of(booking_id: int) -> str:
    """The origin the booking's own pages were on when it was made or moved (its latest event's)."""
    data = db.session.scalar(
        sa.select(Event.data).where(Event.booking_id == booking_id).order_by(Event.id.desc()).limit(1)
    )
    return data["base_url"] if data else base_url()


_DUE_REMINDERS = (
    sa.select(Booking)
    .where(
        Booking.remind_at <= sa.bindparam("now", type_=Booking.remind_at.type), Booking.cancelled_at.is_(None)
    )
    .order_by(Booking.remind_at, Booking.id)
    .limit(sa.bindparam("batch"))
)


_ANY_DUE_REMINDER = (
    sa.select(Booking.id)
    .where(
        Booking.remind_at <= sa.bindparam("now", type_=Booking.remind_at.type), Booking.cancelled_at.is_(None)
    )
    .limit(1)
)


def queue_due_reminders(now: datetime, batch: int = 20) -> int:
    """Queue the reminder email of each booking whose ``remind_at`` has come; return how many.

    A booking that has started by then gets none. Each booking's remind_at
    is cleared in the transaction that queues its email: sent once.
    """
    if db.session.scalar(_ANY_DUE_REMINDER, {"now": now}) is None:
        db.session.rollback()
        return 0
    with write_transaction():
        query = _DUE_REMINDERS
        if db.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Booking)
        due = list(db.session.scalars(query, {"now": now, "batch": batch}))
        rows = []
        for booking in due:
            booking.remind_at = None
            if booking.start_at <= now:
                continue
            calendar = booking.calendar
            notice = mail.booking_notice(
                booking,
                to_owner=False,
                subject=f"Reminder: {calendar.name} with {calendar.owner.name}",
                headline="A reminder of your meeting",
                lines=[],
                method="REQUEST",
                base=_origin_of(booking.id),
            )
            rows.append(
                mail.email_delivery(
                    notice,
                    owner_id=calendar.owner_id,
                    event_type="booking.reminder",
                    event_id=f"reminder-{booking.id}",
                    now=now,
                )
            )
        outbox.add(rows)
    return len(due)
