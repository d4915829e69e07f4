"""Webhooks end to end: a real local HTTP receiver and the real worker process.

The app books through the HTML form of a one-time link; the event goes to
the outbox in the booking's transaction; `flask worker` (a subprocess on the
same SQLite file and secret) delivers it, signed, retrying a failing
receiver with the same event id, and logs every attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from requests.structures import CaseInsensitiveDict
from werkzeug.security import generate_password_hash

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Booking, DeliveryAttempt, Event, OneTimeLink, OutboxMessage, Owner, utcnow
from oncecal.services import webhooks
from tests.apispec import Account, book, schema_validator, seed_account
from tests.conftest import fan_out_events
from tests.support.apps import TEST_SECRET, make_test_app
from tests.support.pages import BookingPage
from tests.support.servers import BIN, PROJECT_ROOT, server_env

pytestmark = pytest.mark.slow

RETRY_DELAYS = [0.2, 0.2, 0.2]
WAIT = 30.0


@dataclass
class Delivery:
    headers: CaseInsensitiveDict[str]
    body: bytes
    at: float

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records each POST and answers as told."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to this many requests first
    always_fail: bool = False
    delay: float = 0.0  # seconds to wait before answering
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = WAIT) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.deliveries) >= count:
                    return list(self.deliveries)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.deliveries)} of {count} deliveries after {timeout}s")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.deliveries.append(
                    Delivery(CaseInsensitiveDict(self.headers.items()), body, time.time())
                )
                failing = state.always_fail or state.fail_next > 0
                if state.fail_next > 0:
                    state.fail_next -= 1
            time.sleep(state.delay)
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/oncecal"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def hook_app(tmp_path: Path) -> Iterator[Flask]:
    app = make_test_app(
        f"sqlite:///{tmp_path / 'hooks.sqlite3'}",
        WEBHOOK_ALLOW_PRIVATE=True,
        WEBHOOK_RETRY_DELAYS=RETRY_DELAYS,
    )
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@dataclass
class Setup:
    app: Flask
    client: FlaskClient
    account: Account
    secret: str
    endpoint_id: int
    worker_env: dict[str, str]
    log_dir: Path

    def api(self, method: str, path: str, **kw: Any) -> Any:
        response = self.client.open(
            f"/api/v1{path}", method=method, headers={"Authorization": f"Bearer {self.account.key}"}, **kw
        )
        assert response.status_code in (200, 201), response.get_json()
        return response.get_json()

    def new_link(self, **fields: Any) -> dict[str, Any]:
        return self.api("POST", "/one-time-links", json={"calendar": self.account.slug, **fields})

    def webhook_rows(self) -> list[OutboxMessage]:
        """The webhook deliveries the events have made (their fan-out run first), oldest first."""
        with self.app.app_context():
            fan_out_events()
            rows = db.session.scalars(
                sa.select(OutboxMessage).where(OutboxMessage.kind == "webhook").order_by(OutboxMessage.id)
            ).all()
            db.session.expunge_all()
            return list(rows)

    def attempts(self, message_id: int) -> list[DeliveryAttempt]:
        with self.app.app_context():
            rows = db.session.scalars(
                sa.select(DeliveryAttempt)
                .where(DeliveryAttempt.message_id == message_id)
                .order_by(DeliveryAttempt.id)
            ).all()
            db.session.expunge_all()
            return list(rows)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"not reached in {timeout}s; worker log:\n{self.worker_log()}")

    def worker_log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.log_dir.glob("worker-*.log"))
        )

    def run_worker_once(self) -> str:
        """Run `flask worker --once` to completion; return its output."""
        result = subprocess.run(
            [str(BIN / "flask"), "--app", "app", "worker", "--once"],
            cwd=PROJECT_ROOT,
            env=self.worker_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    @contextmanager
    def worker(self) -> Iterator[subprocess.Popen[bytes]]:
        """Run `flask worker` in the background for the block; stop it with SIGTERM after."""
        log_path = self.log_dir / f"worker-{time.monotonic_ns()}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(BIN / "flask"), "--app", "app", "worker", "--poll", "0.05"],
                cwd=PROJECT_ROOT,
                env=self.worker_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=5)


@pytest.fixture
def setup(hook_app: Flask, receiver: Receiver, tmp_path: Path) -> Setup:
    account = seed_account(hook_app)
    with hook_app.app_context():
        owner = db.session.get_one(Owner, account.owner_id)
        endpoint, secret = webhooks.create_endpoint(
            owner, receiver.url, runtime().link_keys, utcnow(), allow_private=True
        )
        endpoint_id = endpoint.id
    env = server_env(
        hook_app.config["SQLALCHEMY_DATABASE_URI"],
        TEST_SECRET,
        "http://localhost",
        WEBHOOK_ALLOW_PRIVATE="1",
        WEBHOOK_RETRY_DELAYS=json.dumps(RETRY_DELAYS),
    )
    return Setup(hook_app, hook_app.test_client(), account, secret, endpoint_id, env, tmp_path)


def verify_signature(delivery: Delivery, secret: str) -> int:
    """Check OnceCal-Signature as an integrator would; return its timestamp."""
    parts = dict(item.split("=", 1) for item in delivery.headers["OnceCal-Signature"].split(","))
    timestamp = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + delivery.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected), "the signature does not verify"
    assert abs(time.time() - timestamp) < 300
    return timestamp


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return unescape(match.group(1))


def test_a_booking_is_delivered_signed_after_commit(setup: Setup, receiver: Receiver):
    link = setup.new_link(external_id="crm-42", metadata={"deal": 7, "tags": ["vip"]})
    slot = book(setup.client, link["url"], name="Ivy Invitee", email="ivy@example.com")

    # Queued with the booking, not sent by the request.
    (row,) = setup.webhook_rows()
    assert (row.status, row.event_type, row.attempts, row.endpoint_id) == (
        "pending",
        "booking.created",
        0,
        setup.endpoint_id,
    )
    assert receiver.deliveries == []
    # The stored event keeps no usable link: the worker puts its url back when it sends.
    assert row.payload["link"]["url"] is None
    assert urlsplit(link["url"]).path.rsplit("/", 1)[1] not in json.dumps(row.payload)

    output = setup.run_worker_once()
    (delivery,) = receiver.wait_for(1)
    assert "booking.created" in output

    verify_signature(delivery, setup.secret)
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["OnceCal-Event"] == "booking.created"
    body = delivery.json
    assert set(body) == {"id", "event", "created_at", "link", "booking"}
    assert (
        body["id"].startswith("evt_") and body["id"] == delivery.headers["OnceCal-Event-Id"] == row.event_id
    )
    assert body["event"] == "booking.created"
    assert body["created_at"].endswith("Z")
    schema_validator("Link").validate(body["link"])
    schema_validator("Booking").validate(body["booking"])
    assert body["link"]["id"] == link["id"] and body["link"]["status"] == "used"
    assert body["link"]["url"] == link["url"]
    assert body["link"]["external_id"] == "crm-42"
    assert body["link"]["metadata"] == {"deal": 7, "tags": ["vip"]}
    assert body["booking"]["start"] == slot and body["booking"]["link_id"] == link["id"]
    assert body["booking"]["invitee"] == {"name": "Ivy Invitee", "email": "ivy@example.com"}

    (row,) = setup.webhook_rows()
    assert (row.status, row.attempts) == ("delivered", 1) and row.delivered_at is not None
    (attempt,) = setup.attempts(row.id)
    assert attempt.status_code == 200 and attempt.error is None

    # Delivered messages are not sent again.
    setup.run_worker_once()
    time.sleep(0.3)
    assert len(receiver.deliveries) == 1


def test_a_forged_or_altered_body_does_not_verify(setup: Setup, receiver: Receiver):
    book(setup.client, setup.new_link()["url"])
    setup.run_worker_once()
    (delivery,) = receiver.wait_for(1)
    verify_signature(delivery, setup.secret)
    altered = Delivery(delivery.headers, delivery.body.replace(b"booking.created", b"booking.cancelled"), 0)
    with pytest.raises(AssertionError, match="does not verify"):
        verify_signature(altered, setup.secret)
    with pytest.raises(AssertionError, match="does not verify"):
        verify_signature(delivery, "whsec_someone-else")


def test_the_booking_does_not_wait_for_a_slow_receiver(setup: Setup, receiver: Receiver):
    receiver.delay = 5.0
    first = setup.new_link()
    second = setup.new_link()
    with setup.worker():
        book(setup.client, first["url"])
        receiver.wait_for(1)  # the worker is now inside a 5 s delivery
        page = BookingPage.parse(setup.client.get(urlsplit(second["url"]).path).get_data(as_text=True))
        started = time.monotonic()
        response = setup.client.post(urlsplit(second["url"]).path, data=page.form())
        took = time.monotonic() - started
        assert response.status_code == 303
        assert took < 3.0, f"the booking took {took:.2f}s while the receiver was slow"
        receiver.delay = 0.0
        receiver.wait_for(2, timeout=WAIT)
        setup.wait_until(lambda: all(r.status == "delivered" for r in setup.webhook_rows()))
    assert len(setup.webhook_rows()) == 2


def test_the_booking_answers_while_the_receiver_is_down(setup: Setup, receiver: Receiver):
    with setup.app.app_context():
        owner = db.session.get_one(Owner, setup.account.owner_id)
        webhooks.create_endpoint(
            owner, "http://127.0.0.1:9/down", runtime().link_keys, utcnow(), allow_private=True
        )
    started = time.monotonic()
    book(setup.client, setup.new_link()["url"])
    assert time.monotonic() - started < 3.0
    setup.run_worker_once()
    rows = setup.webhook_rows()
    assert len(rows) == 2 and len({r.event_id for r in rows}) == 1  # one row per endpoint, one event
    down = next(r for r in rows if r.endpoint_id != setup.endpoint_id)
    up = next(r for r in rows if r.endpoint_id == setup.endpoint_id)
    assert up.status == "delivered"
    # Refused connections are logged and retried (`--once` may retry while it runs).
    assert down.status in ("pending", "failed") and down.attempts >= 1
    attempts = setup.attempts(down.id)
    assert len(attempts) == down.attempts
    assert all(a.status_code is None and a.error for a in attempts)


def test_a_failing_receiver_gets_retries_with_the_same_event_id(setup: Setup, receiver: Receiver):
    receiver.fail_next = 2
    book(setup.client, setup.new_link(external_id="c-1")["url"])
    with setup.worker():
        deliveries = receiver.wait_for(3)
        setup.wait_until(lambda: setup.webhook_rows()[0].status == "delivered")
    assert len(receiver.deliveries) == 3
    ids = {d.json["id"] for d in deliveries} | {d.headers["OnceCal-Event-Id"] for d in deliveries}
    assert len(ids) == 1
    assert len({d.body for d in deliveries}) == 1  # the same payload every time
    for delivery in deliveries:
        verify_signature(delivery, setup.secret)
    gaps = [b.at - a.at for a, b in itertools.pairwise(deliveries)]
    assert all(gap >= 0.15 for gap in gaps), gaps  # backoff of WEBHOOK_RETRY_DELAYS

    (row,) = setup.webhook_rows()
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)
    attempts = setup.attempts(row.id)
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert attempts[0].error == "HTTP 500"
    assert [a.attempted_at for a in attempts] == sorted(a.attempted_at for a in attempts)
    assert all(a.duration_ms >= 0 for a in attempts)


def test_a_permanently_failing_receiver_ends_failed(setup: Setup, receiver: Receiver):
    receiver.always_fail = True
    book(setup.client, setup.new_link()["url"])
    with setup.worker():
        setup.wait_until(lambda: setup.webhook_rows()[0].status == "failed")
        time.sleep(2 * max(RETRY_DELAYS))  # no attempt after the last
    (row,) = setup.webhook_rows()
    tries = len(RETRY_DELAYS) + 1
    assert row.attempts == tries and row.last_error == "HTTP 500"
    assert [a.status_code for a in setup.attempts(row.id)] == [500] * tries
    assert len(receiver.deliveries) == tries
    assert len({d.json["id"] for d in receiver.deliveries}) == 1


def test_link_revoked_fires_on_delete(setup: Setup, receiver: Receiver):
    link = setup.new_link(external_id="crm-9", metadata={"why": "duplicate"})
    assert setup.webhook_rows() == []  # creating a link sends nothing
    revoked = setup.api("DELETE", f"/one-time-links/{link['id']}")
    assert revoked["status"] == "revoked"
    setup.api("DELETE", f"/one-time-links/{link['id']}")  # revoking again sends nothing more
    setup.run_worker_once()
    (delivery,) = receiver.wait_for(1)
    verify_signature(delivery, setup.secret)
    body = delivery.json
    assert body["event"] == "link.revoked" and delivery.headers["OnceCal-Event"] == "link.revoked"
    assert body["booking"] is None
    assert body["link"]["id"] == link["id"] and body["link"]["status"] == "revoked"
    assert body["link"]["external_id"] == "crm-9" and body["link"]["metadata"] == {"why": "duplicate"}
    schema_validator("Link").validate(body["link"])
    assert [r.status for r in setup.webhook_rows()] == ["delivered"]


def test_deleting_a_calendar_sends_booking_cancelled_and_no_link_revoked(setup: Setup, receiver: Receiver):
    booked = setup.new_link(external_id="crm-1")
    unused = setup.new_link(external_id="crm-2")
    book(setup.client, booked["url"], name="Ivy Invitee", email="ivy@example.com")
    setup.run_worker_once()
    receiver.wait_for(1)

    with setup.app.app_context():
        (booking_id,) = db.session.scalars(sa.select(Booking.id)).all()
        db.session.get_one(Owner, setup.account.owner_id).password_hash = generate_password_hash(
            "pw-for-tests"
        )
        db.session.commit()
    owner_client = setup.app.test_client()
    login = owner_client.get("/login").get_data(as_text=True)
    credentials = {"email": setup.account.email, "password": "pw-for-tests"}
    assert owner_client.post("/login", data={"csrf_token": csrf_of(login), **credentials}).status_code == 302
    path = f"/dashboard/calendars/{setup.account.calendar_id}/delete"
    page = owner_client.get(path).get_data(as_text=True)
    response = owner_client.post(path, data={"csrf_token": csrf_of(page), "upcoming": str(booking_id)})
    assert response.status_code == 302

    setup.run_worker_once()
    deliveries = receiver.wait_for(2)
    time.sleep(0.5)  # nothing more comes: no link.revoked for the two links
    assert [d.json["event"] for d in receiver.deliveries] == ["booking.created", "booking.cancelled"]
    cancelled = deliveries[1].json
    verify_signature(deliveries[1], setup.secret)
    assert cancelled["link"]["external_id"] == "crm-1" and cancelled["link"]["status"] == "revoked"
    assert cancelled["booking"]["cancelled_at"] is not None
    statuses = {setup.api("GET", f"/one-time-links/{link['id']}")["status"] for link in (booked, unused)}
    assert statuses == {"revoked"}


def test_a_booking_that_fails_leaves_no_event(setup: Setup):
    first, second = setup.new_link(), setup.new_link()
    first_path, second_path = urlsplit(first["url"]).path, urlsplit(second["url"]).path
    first_page = BookingPage.parse(setup.client.get(first_path).get_data(as_text=True))
    second_page = BookingPage.parse(setup.client.get(second_path).get_data(as_text=True))
    slot = first_page.slots[0]
    assert slot in second_page.slots

    assert setup.client.post(first_path, data=first_page.form(slot)).status_code == 303
    with setup.app.app_context():
        recorded = db.session.scalar(sa.select(sa.func.count(Event.id)))
    assert recorded == 1 and len(setup.webhook_rows()) == 1

    # The slot is taken now: 409, the link stays unused, no event is recorded.
    assert setup.client.post(second_path, data=second_page.form(slot)).status_code == 409
    # Bad input: 400, no event either.
    assert setup.client.post(second_path, data=second_page.form(email="not-an-email")).status_code == 400
    with setup.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Event.id))) == recorded
        assert db.session.get_one(OneTimeLink, second["id"]).uses == 0
        assert db.session.scalar(sa.select(sa.func.count(Booking.id))) == 1
    assert len(setup.webhook_rows()) == 1
