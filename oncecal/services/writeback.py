"""Bookings written into the owner's connected calendar: one outbox delivery per booking change and target.

The worker sends each (oncecal.worker); a delivery makes the target hold
the booking as it is when sent: PUT while it is live and the target is still
the calendar's "add bookings to", DELETE once it is cancelled or the owner
chose another target. So the order in which deliveries arrive does not
matter, and a calendar that stopped receiving bookings loses the ones it
had as they change. A failure is the delivery's, retried by the outbox; it
never undoes the booking.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import Booking, ConnectedCalendar, Event, WrittenEvent, utcnow
from oncecal.services import caldav_source, connections, outbox, remote
from oncecal.services.ics import booking_ics, booking_uid
from oncecal.services.outbox import Outcome
from oncecal.services.remote import RemoteError


def deliveries(event: Event, booking: Booking, now: datetime) -> list[dict[str, Any]]:
    """The write-backs a booking event makes: to the calendar's target, and to every other one holding it."""
    targets = set(
        db.session.scalars(
            sa.select(WrittenEvent.target_id).where(
                WrittenEvent.booking_id == booking.id, WrittenEvent.deleted_at.is_(None)
            )
        )
    )
    current = connections.target_of(booking.calendar_id)
    if current is not None:
        targets.add(current)
    return [
        outbox.message(
            "calendar",
            event_id=event.event_id,
            event_type=event.type,
            owner_id=event.owner_id,
            payload={"booking_id": booking.id, "target_id": target_id, "base_url": event.data["base_url"]},
            now=now,
        )
        for target_id in sorted(targets)
    ]


@dataclass(frozen=True)
class _Write:
    """One write, copied out of the database before the network is touched: PUT ``ics``, or DELETE (None)."""

    account: caldav_source.Account = field(repr=False)  # it holds the password
    href: str
    ics: bytes | None
    etag: str | None


def _written(booking_id: int, target_id: int) -> WrittenEvent | None:
    return db.session.scalar(
        sa.select(WrittenEvent).where(
            WrittenEvent.booking_id == booking_id, WrittenEvent.target_id == target_id
        )
    )


def _send(write: _Write) -> tuple[int, str | None]:
    """PUT or DELETE on the server; no database here."""
    if write.ics is None:
        status = caldav_source.delete_event(write.account, write.href)
        return (204 if status in (404, 410) else status), None  # gone already: what a delete is for
    try:
        return caldav_source.put_event(write.account, write.href, write.ics, write.etag)
    except caldav_source.EventChanged:
        # Written before (a try whose answer was lost), or edited there since: write it again over it.
        try:
            current = caldav_source.current_etag(write.account, write.href)
        except caldav_source.EventGone:
            return caldav_source.put_event(write.account, write.href, write.ics, None)
        # There, with its ETag if the server gives one; without, written over unconditionally.
        return caldav_source.put_event(
            write.account, write.href, write.ics, current, unconditional=current is None
        )


def write_back(booking_id: int, target_id: int, base_url: str) -> Outcome:
    """Make the target calendar hold the booking as it is now; report what happened (never raise for the server)."""
    started = time.monotonic()

    def outcome(status: int | None, error: str | None = None, *, permanent: bool = False) -> Outcome:
        return Outcome(status, error, int((time.monotonic() - started) * 1000), permanent=permanent)

    booking = db.session.get(Booking, booking_id)
    target = db.session.get(ConnectedCalendar, target_id)
    if booking is None or target is None or not target.remote_url:
        return outcome(None, "the booking or the calendar it was written to is gone", permanent=True)
    written = _written(booking_id, target_id)
    keep = booking.cancelled_at is None and connections.target_of(booking.calendar_id) == target_id
    if not keep and written is None:
        return outcome(204)  # never written there: nothing to delete
    manage = f"{base_url}/dashboard/calendars/{booking.calendar_id}/bookings"
    try:
        write = _Write(
            account=connections.account_of(target.connection),
            href=written.href
            if written
            else caldav_source.event_href(target.remote_url, booking_uid(booking)),
            ics=booking_ics(booking, manage_url=manage, for_server=True) if keep else None,
            etag=written.etag if written and written.deleted_at is None else None,
        )
        db.session.rollback()  # no transaction stays open while the server answers
        status, etag = remote.within(write.account.guard.deadline, _send, write)
    except RemoteError as failure:
        db.session.rollback()
        return outcome(None, str(failure)[:500])
    with write_transaction():
        row = _written(booking_id, target_id)
        if row is None:
            row = WrittenEvent(booking_id=booking_id, target_id=target_id, href=write.href)
            db.session.add(row)
        row.etag = etag
        row.deleted_at = None if keep else utcnow()
        # Cancelled while the PUT was on its way (another worker may have sent the DELETE
        # before it landed): this delivery takes the event out again.
        again = keep and db.session.scalar(sa.select(Booking.cancelled_at).where(Booking.id == booking_id))
    if again:
        return write_back(booking_id, target_id, base_url)
    return outcome(status)
