"""Turn domain changes into webhook events, inside the change's own transaction."""

from __future__ import annotations

from oncecal.models import Booking, OneTimeLink, utcnow
from oncecal.serializers import booking_json, link_json
from oncecal.services.webhooks import record_event


def _link(link: OneTimeLink | None) -> dict | None:
    return link_json(link, utcnow()) if link is not None else None


def booking_created(booking: Booking) -> None:
    """Queue booking.created for the calendar owner's endpoints."""
    record_event(
        booking.calendar.owner_id, "booking.created", utcnow(), _link(booking.link), booking_json(booking)
    )


def booking_cancelled(booking: Booking) -> None:
    """Queue booking.cancelled."""
    record_event(
        booking.calendar.owner_id, "booking.cancelled", utcnow(), _link(booking.link), booking_json(booking)
    )


def link_revoked(link: OneTimeLink) -> None:
    """Queue link.revoked."""
    record_event(link.calendar.owner_id, "link.revoked", utcnow(), _link(link), None)
