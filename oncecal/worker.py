"""The worker: turns events into deliveries, finds due reminders, sends each delivery; reads connected calendars.

Each pass: the oldest event without deliveries gets them (fanout), due
reminders are queued, and one due delivery is sent and its outcome recorded
(outbox). Whatever one delivery raises is that delivery's failed attempt.
A second thread, the sync lane, reads the connected calendars whose turn it is.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import FrameType

from flask import Flask

from oncecal.app_objects import runtime
from oncecal.config import webhooks_private_allowed
from oncecal.extensions import db
from oncecal.models import OutboxMessage, utcnow
from oncecal.serializers import with_link_url
from oncecal.services import connections, fanout, mail, outbox, webhooks, writeback
from oncecal.text import as_one_line

log = logging.getLogger("oncecal.worker")


def _send(app: Flask, message: OutboxMessage) -> outbox.Outcome:
    if message.kind == "calendar":
        payload = message.payload
        return writeback.write_back(payload["booking_id"], payload["target_id"], payload["base_url"])
    if message.kind == "email":
        try:
            email = mail.render(message.payload, runtime().link_keys)
        except mail.NoticeGone as gone:
            return outbox.Outcome(None, str(gone), 0, permanent=True)
        return mail.send_email(email, app.config.get("SMTP_URL"), app.config["MAIL_FROM"])
    event = dict(message.payload)
    base = event.pop("base_url", None)
    if event.get("link"):
        event["link"] = with_link_url(event["link"], base)
    return webhooks.send_webhook(
        message, event, runtime().link_keys, allow_private=webhooks_private_allowed()
    )


def _attempt(app: Flask, message: OutboxMessage) -> outbox.Outcome:
    """Send one message; whatever it raises is that message's failed attempt, never the worker's end."""
    started = time.monotonic()
    try:
        return _send(app, message)
    except Exception as failure:
        log.exception("%s %s %s raised", message.kind, message.event_type, message.event_id)
        db.session.rollback()
        # Stored and shown on one line; PostgreSQL refuses NUL, which an error may quote.
        error = as_one_line(f"{type(failure).__name__}: {failure}")[:500]
        return outbox.Outcome(None, error, int((time.monotonic() - started) * 1000))


def run_worker(app: Flask, *, once: bool = False, poll_interval: float = 1.0) -> int:
    """Send due messages until stopped (or, with once, until none is due); return how many were tried."""
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    if not once:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    delays = app.config.get("WEBHOOK_RETRY_DELAYS") or outbox.DEFAULT_RETRY_DELAYS
    # How long a claimed message waits before another worker may send it again
    # (its worker may have died mid-send); ONCECAL_OUTBOX_LEASE_SECONDS.
    lease = timedelta(seconds=app.config.get("OUTBOX_LEASE_SECONDS") or outbox.CLAIM_LEASE.total_seconds())
    tried = 0
    lane = None
    if not once:
        lane = threading.Thread(
            target=_sync_lane, args=(app, lambda: stopping), name="sync-lane", daemon=True
        )
        lane.start()
    while not stopping:
        with app.app_context():
            event = fanout.fan_out_next(utcnow())
            if event is not None and event.error:
                log.error("event %s %s made no deliveries: %s", event.type, event.event_id, event.error)
            reminders = fanout.queue_due_reminders(utcnow())
            message = outbox.claim_due(utcnow(), lease)
            if message is not None:
                outcome = _attempt(app, message)
                outbox.record_outcome(message.id, outcome, utcnow(), delays)
                tried += 1
                log.info(
                    "%s %s %s: %s",
                    message.kind,
                    message.event_type,
                    message.event_id,
                    outcome.status_code or outcome.error or ("printed" if outcome.printed else ""),
                )
            db.session.remove()
        if message is None and event is None and not reminders:
            if once:
                break
            time.sleep(poll_interval)
    if lane is not None:
        lane.join(timeout=15)
    return tried


def _sync_lane(app: Flask, stopping: Callable[[], bool], poll_interval: float = 1.0) -> None:
    """Read connected calendars as their turns come (every 5 minutes each), beside the deliveries.

    A lane of its own: a slow calendar server never delays an email or a webhook call.
    """
    while not stopping():
        result = None
        with app.app_context():
            try:
                result = connections.sync_next_due(utcnow())
            except Exception:
                log.exception("calendar sync raised")
            finally:
                db.session.remove()
        if result is not None and not result.ok and not result.skipped:
            log.warning("calendar sync failed: %s", result.error)
        if result is None or not result.ok:
            time.sleep(poll_interval)
