"""Webhooks: endpoints, signatures, the outbox written with the booking, delivery with retries.

An event is written to the outbox inside the transaction that made it, one
row per endpoint, so it exists exactly when its booking does; the worker
sends it after commit (oncecal.services.outbox keeps the retries).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import OutboxMessage, Owner, WebhookEndpoint
from oncecal.services import outbox
from oncecal.services.outbox import Outcome
from oncecal.services.tokens import LinkKeys

EVENTS = ("booking.created", "booking.cancelled", "booking.rescheduled", "link.revoked")
TIMEOUT_SECONDS = 10


class InvalidEndpoint(ValueError):
    """The URL cannot receive webhooks."""


def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse URLs that are not http(s) or that point at private addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidEndpoint("Use an http:// or https:// URL.")
    if len(url) > 2000:
        raise InvalidEndpoint("That URL is too long.")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        raise InvalidEndpoint(f"{parts.hostname} does not resolve.") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            raise InvalidEndpoint(
                f"{parts.hostname} points to a private or loopback address ({address}); "
                "set ONCECAL_WEBHOOK_ALLOW_PRIVATE=1 to allow that."
            )


def endpoint_secret(keys: LinkKeys, endpoint: WebhookEndpoint) -> str | None:
    """Return an endpoint's signing secret, or None if its key was retired."""
    token = keys.token_for(endpoint.secret_nonce, endpoint.key_id)
    return None if token is None else "whsec_" + token


def create_endpoint(
    owner: Owner, url: str, keys: LinkKeys, now: datetime, *, allow_private: bool
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; return it with its signing secret."""
    check_target(url, allow_private=allow_private)
    fresh = keys.new_token()
    endpoint = WebhookEndpoint(
        owner_id=owner.id, url=url, secret_nonce=fresh.nonce, key_id=fresh.key_id, created_at=now
    )
    with write_transaction():
        db.session.add(endpoint)
    return endpoint, "whsec_" + fresh.token


def rotate_secret(endpoint: WebhookEndpoint, keys: LinkKeys) -> str:
    """Give an endpoint a new signing secret; the old one stops at once."""
    fresh = keys.new_token()
    with write_transaction():
        endpoint.secret_nonce, endpoint.key_id = fresh.nonce, fresh.key_id
    return "whsec_" + fresh.token


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the OnceCal-Signature header for a body."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


# Built once: every booking asks it (unless its transaction already knows, see note_no_endpoints).
_LIVE_ENDPOINTS = sa.select(WebhookEndpoint.id).where(
    WebhookEndpoint.owner_id == sa.bindparam("owner_id"), WebhookEndpoint.disabled_at.is_(None)
)
_NONE_LIVE = "oncecal.webhooks.none_live"


def owner_has_endpoints(owner_id_column: str) -> sa.ColumnElement[bool]:
    """SQL: the owner in ``owner_id_column`` (a qualified column name) has a live endpoint.

    Written out, not built: inside a RETURNING clause SQLAlchemy's SQLite
    dialect drops the table names of every column, a subquery's too, and a
    built ``owner_id = owner_id`` would always be true.
    """
    return sa.literal_column(
        "EXISTS (SELECT 1 FROM webhook_endpoints AS live"
        f" WHERE live.owner_id = {owner_id_column} AND live.disabled_at IS NULL)",
        sa.Boolean,
    )


def note_no_endpoints(owner_id: int) -> None:
    """Record that ``owner_id`` has no live endpoint, as this transaction has just read.

    record_event then asks no more in this transaction: a booking's own
    statements can tell it (bookings.take_calendar_turn), which saves a
    round trip to the database on every booking.
    """
    db.session.info[_NONE_LIVE] = (db.session().get_transaction(), owner_id)


def _live_endpoints(owner_id: int) -> Sequence[int]:
    known = db.session.info.get(_NONE_LIVE)
    if known is not None and known[0] is db.session().get_transaction() and known[1] == owner_id:
        return ()
    return db.session.connection().execute(_LIVE_ENDPOINTS, {"owner_id": owner_id}).scalars().all()


def record_event(
    owner_id: int,
    event_type: str,
    now: datetime,
    link: Callable[[], Any] | None,
    booking: Callable[[], Any] | None,
    base_url: str | None = None,
) -> str:
    """Queue an event for each of the owner's endpoints; call inside the event's transaction.

    ``link`` and ``booking`` make the event's objects; they are called only
    when the owner has an endpoint to send them to. ``base_url``, the origin
    the link's url is rebuilt on when sending, is kept beside the event and
    not sent.
    """
    event_id = "evt_" + uuid.uuid4().hex
    endpoints = _live_endpoints(owner_id)
    if not endpoints:
        return event_id
    body = {
        "id": event_id,
        "event": event_type,
        "created_at": _iso(now),
        "link": link() if link else None,
        "booking": booking() if booking else None,
    }
    payload = {**body, "base_url": base_url} if base_url else body
    outbox.add(
        [
            outbox.message(
                "webhook",
                event_id=event_id,
                event_type=event_type,
                owner_id=owner_id,
                payload=payload,
                now=now,
                endpoint_id=endpoint_id,
            )
            for endpoint_id in endpoints
        ]
    )
    return event_id


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST a body once; never raise, report what happened."""
    started = time.monotonic()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            status, error = response.status, None
    except urllib.error.HTTPError as failure:
        status, error = failure.code, f"HTTP {failure.code}"
    except (urllib.error.URLError, OSError, ValueError) as failure:
        status, error = None, str(getattr(failure, "reason", failure))[:500]
    return Outcome(status, error, int((time.monotonic() - started) * 1000))


def send_webhook(
    message: OutboxMessage, payload: dict[str, Any], keys: LinkKeys, *, allow_private: bool
) -> Outcome:
    """Deliver one webhook message once, signed with its endpoint's secret.

    ``payload`` is the message's stored event with the link's url put back
    (oncecal.serializers.with_link_url).
    """
    endpoint = message.endpoint
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    secret = endpoint_secret(keys, endpoint) if endpoint else None
    if endpoint is None or endpoint.disabled_at is not None or secret is None:
        return Outcome(None, "endpoint removed or its secret retired", 0)
    try:
        check_target(endpoint.url, allow_private=allow_private)
    except InvalidEndpoint as refused:
        return Outcome(None, str(refused), 0)
    return post(
        endpoint.url,
        body,
        {
            "Content-Type": "application/json",
            "User-Agent": "OnceCal-Webhooks/1",
            "OnceCal-Event": message.event_type,
            "OnceCal-Event-Id": message.event_id,
            "OnceCal-Signature": sign(secret, int(time.time()), body),
        },
    )
