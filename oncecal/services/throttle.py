"""Throttle failed token look-ups per client (PRODUCT.md rule 7)."""

from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter


class FailureThrottle:
    """Count failures per client; past the limit, tell how long to wait."""

    def __init__(self, storage_uri: str, limit: str, namespace: str) -> None:
        self._limiter = FixedWindowRateLimiter(storage_from_string(storage_uri))
        self._limit = parse(limit)
        self._namespace = namespace

    def record_failure(self, client: str) -> int | None:
        """Count one failure; return seconds to wait when over the limit, else None."""
        if self._limiter.hit(self._limit, self._namespace, client):
            return None
        reset_at, _remaining = self._limiter.get_window_stats(self._limit, self._namespace, client)
        return max(1, math.ceil(reset_at - time.time()))
