"""JSON shapes of links and bookings, shared by the CLI and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oncecal.models import Booking, OneTimeLink
from oncecal.runtime import link_url, runtime
from oncecal.services.links import status_of, token_of


def iso(value: datetime | None) -> str | None:
    """Format an instant as ISO 8601 UTC, or None."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def booking_json(booking: Booking) -> dict[str, Any]:
    return {
        "ref": booking.ref,
        "start": iso(booking.start_at),
        "end": iso(booking.end_at),
        "timezone": booking.invitee_timezone,
        "invitee": {"name": booking.invitee_name, "email": booking.invitee_email},
        "created_at": iso(booking.created_at),
        "cancelled_at": iso(booking.cancelled_at),
    }


def link_json(link: OneTimeLink, now: datetime) -> dict[str, Any]:
    token = token_of(runtime().link_keys, link)
    latest = link.bookings[-1] if link.bookings else None
    return {
        "id": link.id,
        "calendar": link.calendar.slug,
        "url": link_url(token) if token else None,
        "label": link.label,
        "status": status_of(link, now).value,
        "uses": link.uses,
        "max_uses": link.max_uses,
        "expires_at": iso(link.expires_at),
        "created_at": iso(link.created_at),
        "external_id": link.external_id,
        "metadata": link.link_metadata,
        "prefill": {"name": link.prefill_name, "email": link.prefill_email},
        "booking": booking_json(latest) if latest else None,
    }
