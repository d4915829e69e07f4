"""API keys: shown once, stored as a SHA-256, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import ApiKey, Owner

PREFIX = "oc_"
# Writing last_used_at on every call would make each read a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_key(owner: Owner, name: str, now: datetime) -> tuple[ApiKey, str]:
    """Create a key; return it with the raw key, which is never shown again."""
    raw = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(owner_id=owner.id, name=name, prefix=raw[:10], key_hash=_hash(raw), created_at=now)
    with write_transaction():
        db.session.add(key)
    return key, raw


def authenticate(raw: str, now: datetime) -> ApiKey | None:
    """Return the live key a raw key string belongs to, or None."""
    if not raw.startswith(PREFIX) or len(raw) > 200:
        return None
    digest = _hash(raw)
    key = db.session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == digest))
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.key_hash, digest):
        return None
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # A write transaction of its own: on SQLite, upgrading the read above
        # to a write fails at once (no busy wait) when a concurrent call of
        # the same key wrote first, and the call would answer 503.
        with write_transaction():
            db.session.execute(
                sa.update(ApiKey)
                .where(
                    ApiKey.id == key.id,
                    sa.or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
                )
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
    return key


def revoke_api_key(key: ApiKey, now: datetime) -> None:
    """Revoke a key; calls with it answer 401 from now on."""
    with write_transaction():
        if key.revoked_at is None:
            key.revoked_at = now
