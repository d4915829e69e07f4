"""Throttle failed token look-ups per client (PRODUCT.md rule 7)."""

from __future__ import annotations

import logging
import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger("oncecal.throttle")


class FailureThrottle:
    """Count failures per client; past the limit, tell how long to wait."""

    def __init__(self, storage_uri: str, limit: str, namespace: str, key_prefix: str = "") -> None:
        # The storage is shared by every process when it is redis://: counts
        # then hold across gunicorn workers and hosts (PRODUCT.md rule 7).
        self._limiter = FixedWindowRateLimiter(storage_from_string(storage_uri))
        # While a shared storage is unreachable, this process counts on its own.
        self._fallback = FixedWindowRateLimiter(storage_from_string("memory://"))
        self._limit = parse(limit)
        # RATELIMIT_KEY_PREFIX, as Flask-Limiter uses it, keeps apps sharing one Redis apart.
        self._keys = (key_prefix, namespace) if key_prefix else (namespace,)

    def record_failure(self, client: str) -> int | None:
        """Count one failure; return seconds to wait when over the limit, else None."""
        try:
            return self._count(self._limiter, client)
        except Exception as error:  # the storage's own errors (redis.ConnectionError, ...): no 500 for them
            log.warning("rate-limit storage unavailable, counting in this process: %s", error)
            return self._count(self._fallback, client)

    def _count(self, limiter: FixedWindowRateLimiter, client: str) -> int | None:
        if limiter.hit(self._limit, *self._keys, client):
            return None
        reset_at, _remaining = limiter.get_window_stats(self._limit, *self._keys, client)
        return max(1, math.ceil(reset_at - time.time()))
