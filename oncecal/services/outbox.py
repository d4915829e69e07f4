"""The outbox: the deliveries of events (one row per email or webhook call), each sent and retried on its own.

The worker writes them from each event after its change committed
(oncecal.services.fanout). It leases one due delivery at a time, sends it (webhook or email), and
records the attempt; failures come back after a growing delay, a bounded
number of times. A worker that dies mid-send lets its lease run out, and the
message is sent again with the same event id: delivery is at least once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import DeliveryAttempt, OutboxMessage

DEFAULT_RETRY_DELAYS = (10, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600)
CLAIM_LEASE = timedelta(seconds=120)


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    # Trying again cannot help (what the message is about is gone): failed at once.
    permanent: bool = False
    # No SMTP server is set: the email went to the worker's log, to nobody.
    printed: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


_INSERT = sa.insert(OutboxMessage)


def message(
    kind: str,
    *,
    event_id: str,
    event_type: str,
    owner_id: int,
    payload: dict[str, Any],
    now: datetime,
    endpoint_id: int | None = None,
) -> dict[str, Any]:
    """Return an outbox row to ``add``: a webhook call or an email, due now."""
    return {
        "kind": kind,
        "event_id": event_id,
        "event_type": event_type,
        "endpoint_id": endpoint_id,
        "owner_id": owner_id,
        "payload": payload,
        "created_at": now,
        "next_attempt_at": now,
    }


def add(messages: Sequence[dict[str, Any]]) -> None:
    """Write outbox rows in the caller's transaction, as one Core statement.

    Every booking writes some, so no ORM object or flush is made for them.
    """
    if messages:
        db.session.connection().execute(_INSERT, list(messages))


def claim_due(now: datetime, lease: timedelta = CLAIM_LEASE) -> OutboxMessage | None:
    """Lease the next due message to this worker for ``lease``, or return None."""
    with write_transaction():
        query = (
            sa.select(OutboxMessage)
            .where(OutboxMessage.status.in_(("pending", "sending")), OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(1)
        )
        if db.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        message = db.session.scalar(query)
        if message is None:
            return None
        message.status = "sending"
        message.next_attempt_at = now + lease
        message_id = message.id
    return db.session.get(OutboxMessage, message_id)


def record_outcome(
    message_id: int, outcome: Outcome, finished: datetime, retry_delays: Sequence[float]
) -> None:
    """Log an attempt and decide: delivered, printed, retry later, or failed for good (dead)."""
    with write_transaction():
        message = db.session.get_one(OutboxMessage, message_id)
        db.session.add(
            DeliveryAttempt(
                message_id=message.id,
                attempted_at=finished,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        message.attempts += 1
        message.last_error = outcome.error
        if outcome.printed:
            message.status = "printed"
        elif outcome.ok:
            message.status, message.delivered_at = "delivered", finished
        elif outcome.permanent or message.attempts > len(retry_delays):
            message.status = "failed"
        else:
            message.status = "pending"
            message.next_attempt_at = finished + timedelta(seconds=retry_delays[message.attempts - 1])


def retryable(message: OutboxMessage) -> bool:
    """Tell whether a dead message can be tried again: not a webhook whose endpoint is gone."""
    if message.status != "failed":
        return False
    return message.kind != "webhook" or (
        message.endpoint is not None and message.endpoint.disabled_at is None
    )


def retry(message_id: int, now: datetime) -> bool:
    """Queue a dead message again, due now, with a fresh round of tries; False if it is not dead.

    Its earlier attempts stay in the log; ``attempts`` counts this round's,
    which the backoff and the last try are reckoned from.
    """
    with write_transaction():
        message = db.session.get(OutboxMessage, message_id)
        if message is None or not retryable(message):
            return False
        message.status, message.attempts, message.next_attempt_at = "pending", 0, now
    return True
