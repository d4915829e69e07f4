"""JSON shapes of links and bookings, shared by the CLI and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink
from oncecal.services.links import status_of, token_of
from oncecal.urls import base_url, link_url


def iso(value: datetime | None) -> str | None:
    """Format an instant as ISO 8601 UTC, or None."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def booking_json(booking: Booking) -> dict[str, Any]:
    """The booking object of the API and webhooks."""
    return {
        "ref": booking.ref,
        "calendar": booking.calendar.slug,
        "link_id": booking.link_id,
        "start": iso(booking.start_at),
        "end": iso(booking.end_at),
        "timezone": booking.invitee_timezone,
        "invitee": {"name": booking.invitee_name, "email": booking.invitee_email},
        "created_at": iso(booking.created_at),
        "cancelled_at": iso(booking.cancelled_at),
    }


def link_json(link: OneTimeLink, now: datetime, *, with_url: bool = True) -> dict[str, Any]:
    """The link object of PRODUCT.md; ``url`` is null once its key is retired.

    ``with_url=False`` leaves the url out, for copies kept in the database
    (the webhook outbox): the worker puts it back when it sends.
    """
    token = token_of(runtime().link_keys, link) if with_url else None
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


def with_link_url(link: dict[str, Any], base: str | None = None) -> dict[str, Any]:
    """Put back the url of a link object kept in the database without it (on ``base``, else base_url())."""
    if link.get("url") is not None:
        return link
    row = db.session.get(OneTimeLink, link["id"])
    token = token_of(runtime().link_keys, row) if row is not None else None
    return {**link, "url": link_url(token, base) if token else None}


def calendar_json(calendar: Calendar) -> dict[str, Any]:
    """The calendar object of the API."""
    return {
        "id": calendar.id,
        "slug": calendar.slug,
        "name": calendar.name,
        "timezone": calendar.timezone,
        "duration_minutes": calendar.duration_minutes,
        "public_page_enabled": calendar.public_page_enabled,
        "scheduling_url": f"{base_url()}/c/{calendar.slug}" if calendar.public_page_enabled else None,
        "permanent_url": f"{base_url()}/p/{calendar.key}" if calendar.public_page_enabled else None,
    }
