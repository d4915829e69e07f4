"""The outbox worker: delivers queued webhooks after their transaction committed."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

from flask import Flask

from oncecal.extensions import db
from oncecal.models import utcnow
from oncecal.runtime import runtime, webhooks_private_allowed
from oncecal.services.webhooks import DEFAULT_RETRY_DELAYS, claim_due, deliver

log = logging.getLogger("oncecal.worker")


def run_worker(app: Flask, *, once: bool = False, poll_interval: float = 1.0) -> int:
    """Deliver due messages until stopped (or, with once, until none is due); return how many were tried."""
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    if not once:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    delays = app.config.get("WEBHOOK_RETRY_DELAYS") or DEFAULT_RETRY_DELAYS
    with app.app_context():
        allow_private = webhooks_private_allowed()
    tried = 0
    while not stopping:
        with app.app_context():
            message = claim_due(utcnow())
            if message is not None:
                outcome = deliver(
                    message, runtime().link_keys, utcnow, allow_private=allow_private, retry_delays=delays
                )
                tried += 1
                log.info(
                    "%s %s to endpoint %s: %s",
                    message.event_type,
                    message.event_id,
                    message.endpoint_id,
                    outcome.status_code or outcome.error,
                )
            db.session.remove()
        if message is None:
            if once:
                break
            time.sleep(poll_interval)
    return tried
