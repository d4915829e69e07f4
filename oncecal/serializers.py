"""The API's answer objects as JSON, for the API, the CLI and webhooks: the models of oncecal/schemas.py, dumped."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oncecal import schemas
from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink
from oncecal.schemas import iso
from oncecal.services.links import status_of, token_of
from oncecal.urls import base_url, link_url

__all__ = ["booking_json", "calendar_json", "iso", "link_json", "with_link_url"]


def booking_json(booking: Booking) -> dict[str, Any]:
    """The booking object of the API and webhooks."""
    return schemas.Booking.of(booking).as_json()


def link_json(link: OneTimeLink, now: datetime, *, with_url: bool = True) -> dict[str, Any]:
    """The link object of PRODUCT.md; ``url`` is null once its key is retired.

    ``with_url=False`` leaves the url out, for copies kept in the database
    (the webhook outbox): the worker puts it back when it sends.
    """
    token = token_of(runtime().link_keys, link) if with_url else None
    return schemas.Link.of(link, status_of(link, now), url=link_url(token) if token else None).as_json()


def with_link_url(link: dict[str, Any], base: str | None = None) -> dict[str, Any]:
    """Put back the url of a link object kept in the database without it (on ``base``, else base_url())."""
    if link.get("url") is not None:
        return link
    row = db.session.get(OneTimeLink, link["id"])
    token = token_of(runtime().link_keys, row) if row is not None else None
    return {**link, "url": link_url(token, base) if token else None}


def calendar_json(calendar: Calendar) -> dict[str, Any]:
    """The calendar object of the API."""
    return schemas.Calendar.of(calendar, base_url()).as_json()
