"""Idempotency-Key on the API's link creation: the first answer to a key, replayed for 24 hours."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import Calendar, IdempotentRequest
from oncecal.serializers import link_json, with_link_url
from oncecal.services import links
from oncecal.services.tokens import LinkKeys

TTL = timedelta(hours=24)


class KeyReused(Exception):
    """The key was used before with another body."""


@dataclass(frozen=True)
class Answer:
    status: int
    link: dict[str, Any]  # the link object, its url in
    replayed: bool


def _stored(api_key_id: int, key: str) -> IdempotentRequest | None:
    return db.session.scalar(
        sa.select(IdempotentRequest).where(
            IdempotentRequest.api_key_id == api_key_id, IdempotentRequest.key == key
        )
    )


def issue_link_once(
    calendar: Calendar,
    keys: LinkKeys,
    now: datetime,
    *,
    api_key_id: int,
    key: str,
    fingerprint: str,
    **fields: Any,
) -> Answer:
    """Issue a link for the first request with ``key``; answer a repeat of it as the first was answered.

    The link and the answer kept for the key are written in one
    transaction. Raises KeyReused when the key comes with another body
    (``fingerprint``, the hash of the request's body).
    """
    try:
        with write_transaction():
            db.session.execute(sa.delete(IdempotentRequest).where(IdempotentRequest.created_at < now - TTL))
            stored = _stored(api_key_id, key)
            if stored is None:
                link, _token = links.issue_link(calendar, keys, now=now, source="api", **fields)
                # Kept without the url: a database dump must hold no usable link.
                db.session.add(
                    IdempotentRequest(
                        api_key_id=api_key_id,
                        key=key,
                        request_hash=fingerprint,
                        status_code=201,
                        response_body=json.dumps(link_json(link, now, with_url=False)),
                        created_at=now,
                    )
                )
                return Answer(201, link_json(link, now), replayed=False)
    except sa.exc.IntegrityError:
        # Another request with this key committed first: answer as it did.
        stored = _stored(api_key_id, key)
        if stored is None:
            raise
    if stored.request_hash != fingerprint:
        raise KeyReused
    return Answer(
        stored.status_code or 201, with_link_url(json.loads(stored.response_body or "{}")), replayed=True
    )
