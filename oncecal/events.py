"""Domain events: recorded by the services in the change's own transaction, one row per change.

A service that books, moves or cancels a booking, revokes a link or starts a
password reset calls ``record`` inside its write transaction, so the event
exists exactly when the change does. After commit the worker turns it into
its deliveries (oncecal.services.fanout).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oncecal.extensions import db
from oncecal.models import Event
from oncecal.urls import base_url

_INSERT = sa.insert(Event)


def record(
    event_type: str,
    *,
    owner_id: int,
    now: datetime,
    booking_id: int | None = None,
    link_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> str:
    """Write one event row in the caller's write transaction; return its public id.

    ``data`` keeps what may change again before the worker reads it (see
    ``booking_facts``). The origin absolute links are built on is kept too:
    the worker has no request to take it from.
    """
    event_id = "evt_" + uuid.uuid4().hex
    db.session.connection().execute(
        _INSERT,
        {
            "event_id": event_id,
            "type": event_type,
            "owner_id": owner_id,
            "booking_id": booking_id,
            "link_id": link_id,
            "data": {**(data or {}), "base_url": base_url()},
            "created_at": now,
        },
    )
    return event_id


def booking_facts(
    *,
    start_at: datetime,
    end_at: datetime,
    sequence: int,
    cancelled_at: datetime | None = None,
    cancelled_by: str | None = None,
    cancel_reason: str | None = None,
) -> dict[str, Any]:
    """What a booking event keeps of its booking: the times and SEQUENCE it had, and its cancellation."""
    return {
        "start_at": start_at.isoformat(),
        "end_at": end_at.isoformat(),
        "sequence": sequence,
        "cancelled_at": cancelled_at.isoformat() if cancelled_at else None,
        "cancelled_by": cancelled_by,
        "cancel_reason": cancel_reason,
    }
