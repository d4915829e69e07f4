"""Webhooks: endpoints, their secrets and signatures, and sending one call.

The calls themselves are deliveries of events (oncecal.services.fanout
makes one per live endpoint; oncecal.services.outbox keeps the retries).
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
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import OutboxMessage, Owner, WebhookEndpoint
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
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
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


def disable_endpoint(endpoint_id: int, now: datetime) -> None:
    """Stop sending events to an endpoint; its past deliveries stay in the log."""
    with write_transaction():
        endpoint = db.session.get_one(WebhookEndpoint, endpoint_id)
        if endpoint.disabled_at is None:
            endpoint.disabled_at = now


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the OnceCal-Signature header for a body."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def live_endpoints(owner_id: int) -> list[int]:
    """Return the ids of the owner's endpoints that receive events."""
    return list(
        db.session.scalars(
            sa.select(WebhookEndpoint.id).where(
                WebhookEndpoint.owner_id == owner_id, WebhookEndpoint.disabled_at.is_(None)
            )
        )
    )


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
