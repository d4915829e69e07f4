"""kill -9 in the middle of a burst of bookings, then restart and drain (PRODUCT.md rule 4, webhooks).

Gunicorn (4 workers) and the outbox worker (`flask --app app worker`) run on
a fresh database, with a real SMTP server (aiosmtpd) and a real webhook
receiver (a threaded HTTP server) on 127.0.0.1. Clients book fresh links as
fast as they can (GET the form, POST it); when half of them have an answer,
every server and worker process gets SIGKILL. Then both start again and the
worker drains the outbox. The rows compare each link's uses with its
bookings, and what the receivers got with what the database committed.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from aiosmtpd.controller import Controller

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Owner, utcnow
from oncecal.services import webhooks
from oncecal.services.ics import booking_uid
from tests.proof.harness import (
    BACKENDS,
    HTTP_TIMEOUT,
    OWNER_EMAIL,
    Site,
    fresh_database,
    make_site,
    wait_until,
)
from tests.proof.report import Proof
from tests.support.pages import BookingPage
from tests.support.servers import free_port, group_size, kill_group, start_worker, stop_group

pytestmark = pytest.mark.slow

CLIENTS = 8
DRAIN_TIMEOUT = 90


# --- the receivers ---------------------------------------------------------------------------


@dataclass
class Receivers:
    """The webhook endpoint and the SMTP server, each keeping what it was sent."""

    webhook_url: str = ""
    smtp_port: int = 0
    hooks: list[tuple[str, str, str]] = field(default_factory=list)  # (event id header, body id, booking ref)
    mails: list[tuple[str, str]] = field(default_factory=list)  # (recipient, .ics UID)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_mail(self, content: bytes, recipients: list[str]) -> None:
        message = email.message_from_bytes(content, policy=email.policy.default)
        uid = ""
        for part in message.iter_attachments():
            if part.get_content_type() == "text/calendar":
                text = part.get_content()
                text = text.decode() if isinstance(text, bytes) else text
                found = re.search(r"^UID:(.+?)\r?$", text, re.MULTILINE)
                uid = found.group(1) if found else ""
        with self.lock:
            self.mails += [(to, uid) for to in recipients]


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    state = Receivers()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            time.sleep(0.01)  # long enough that a kill may land mid-delivery
            with state.lock:
                ref = (body.get("booking") or {}).get("ref", "")
                state.hooks.append((self.headers.get("OnceCal-Event-Id", ""), body.get("id", ""), ref))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    class Mailbox:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            state.take_mail(envelope.original_content, list(envelope.rcpt_tos))
            return "250 Message accepted for delivery"

    http = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    http.daemon_threads = True
    state.webhook_url = f"http://127.0.0.1:{http.server_address[1]}/hooks/oncecal"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    state.smtp_port = free_port()
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=state.smtp_port)
    smtp.start()
    yield state
    smtp.stop()
    http.shutdown()
    http.server_close()
    thread.join(timeout=5)


# --- the burst -------------------------------------------------------------------------------


def book(site_url: str, token: str, slot: str, i: int) -> tuple[str, str | None]:
    """GET the form, POST it; return (outcome, booking ref of a 303)."""
    try:
        page = requests.get(f"{site_url}/l/{token}", timeout=HTTP_TIMEOUT)
        if page.status_code != 200:
            return f"GET {page.status_code}", None
        form = BookingPage.parse(page.text).form(slot, name=f"Invitee {i}", email=f"invitee{i}@example.com")
        answer = requests.post(
            f"{site_url}/l/{token}", data=form, allow_redirects=False, timeout=HTTP_TIMEOUT
        )
    except requests.RequestException:
        return "no answer", None
    ref = urlsplit(answer.headers["Location"]).path.rpartition("/")[2] if answer.status_code == 303 else None
    return str(answer.status_code), ref


def drained(site: Site) -> bool:
    """Every event has its deliveries, and every delivery due now (all but reminders) is delivered."""
    return site.events_waiting() == 0 and all(
        row.status == "delivered" for row in site.outbox_rows() if row.event_type != "booking.reminder"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_mid_burst_loses_nothing_half_way(
    backend: str, proof: Proof, receivers: Receivers, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    n = proof.scale(40, 200)
    scenario = "kill -9 of gunicorn and the worker mid-burst"
    tried = f"{n} bookings of fresh links by {CLIENTS} clients; SIGKILL to all 4 workers, the master and the outbox worker after {n // 2} answers; restart, drain"
    env = {
        "WEBHOOK_ALLOW_PRIVATE": "1",
        "WEBHOOK_RETRY_DELAYS": "[0.2, 0.5, 1, 1, 1, 1]",
        "OUTBOX_LEASE_SECONDS": "2",
        "SMTP_URL": f"smtp://127.0.0.1:{receivers.smtp_port}",
        "MAIL_FROM": "OnceCal Proof <mailer@oncecal.test>",
    }
    with (
        fresh_database(backend, tmp_path, request) as url,
        make_site(url, tmp_path, start=False, **env) as site,
    ):
        calendar_id = site.new_calendar()
        with site.app.app_context():
            owner = db.session.get_one(Owner, site.owner_id)
            webhooks.create_endpoint(
                owner, receivers.webhook_url, runtime().link_keys, utcnow(), allow_private=True
            )
            db.session.remove()
        issued = site.issue_links(calendar_id, n)
        slots = site.open_slots(calendar_id)
        server = site.start()
        worker_env = {**site.env, "ONCECAL_BASE_URL": server.url}
        worker = start_worker(worker_env, tmp_path)
        try:
            # The burst, and the kill when half of it has an answer.
            answered = 0
            lock = threading.Lock()

            def client(i: int) -> tuple[str, str | None]:
                nonlocal answered
                outcome = book(server.url, issued[i][1], slots[i], i)
                with lock:
                    answered += 1
                return outcome

            with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
                futures = [pool.submit(client, i) for i in range(n)]
                wait_until(lambda: answered >= n // 2, 120, "half of the burst answered")
                kill_group(server.process)
                kill_group(worker)
                left = group_size(server.process) + group_size(worker)
                outcomes = [f.result() for f in futures]
            site.server = None
            crashed_ledger = site.ledger(link_id for link_id, _ in issued)

            # Back up on the same port; the worker drains what is due.
            server = site.start(port=urlsplit(server.url).port)
            worker = start_worker(worker_env, tmp_path)
            fresh_id, fresh_token = site.issue_links(calendar_id, 1)[0]
            after = book(server.url, fresh_token, slots[n], n)
            wait_until(lambda: drained(site), DRAIN_TIMEOUT, "the outbox drained")
            time.sleep(0.5)  # a straggling redelivery would land now
        finally:
            stop_group(worker)

        link_ids = [link_id for link_id, _ in issued] + [fresh_id]
        ledger = site.ledger(link_ids)
        committed = site.bookings(calendar_id=calendar_id)
        rows = site.outbox_rows()

    refs = {b.ref for b in committed}
    answered_refs = {ref for _outcome, ref in outcomes if ref}
    codes_seen = sorted({outcome for outcome, _ in outcomes})
    cut_off = sum(1 for outcome, _ in outcomes if outcome == "no answer")

    hook_event = {
        row.payload["booking"]["ref"]: row.event_id
        for row in rows
        if row.kind == "webhook" and row.event_type == "booking.created"
    }
    ids_seen: dict[str, set[str]] = defaultdict(set)
    for header_id, body_id, ref in receivers.hooks:
        ids_seen[ref] |= {header_id, body_id}
    uid_of = {b.ref: booking_uid(b) for b in committed}
    mails = set(receivers.mails)
    mailed = sum(
        1 for b in committed if {(b.invitee_email, uid_of[b.ref]), (OWNER_EMAIL, uid_of[b.ref])} <= mails
    )
    stray_hooks = sum(1 for _h, _b, ref in receivers.hooks if ref not in refs)
    stray_mails = sum(1 for _to, uid in receivers.mails if uid not in set(uid_of.values()))
    redelivered = len(receivers.hooks) - len({body_id for _h, body_id, _r in receivers.hooks})
    mail_copies = len(receivers.mails) - len(mails)
    undelivered = sum(1 for row in rows if row.event_type != "booking.reminder" and row.status != "delivered")

    what = f"{tried}; answers seen: {', '.join(codes_seen)}"
    proof.record(f"{scenario}: processes left after kill -9", tried=tried, expected=0, got=left)
    proof.record(
        f"{scenario}: requests cut off by the kill (> 0: it hit mid-burst)",
        tried=what,
        expected="> 0",
        got=cut_off,
        ok=cut_off > 0,
    )
    proof.record(
        f"{scenario}: links used without a booking, or booked without a use (right after the kill)",
        tried=tried,
        expected=(0, 0),
        got=(crashed_ledger.used_without_booking, crashed_ledger.booked_without_use),
    )
    proof.record(
        f"{scenario}: links whose uses ≠ their bookings (after restart)",
        tried=f"{ledger.links} links, {ledger.bookings} bookings, {ledger.uses} uses",
        expected=0,
        got=ledger.half_written,
    )
    proof.record(
        f"{scenario}: 303 answers whose booking is in the database",
        tried=f"{len(answered_refs)} answered 303; {len(refs - answered_refs) - 1} committed but cut off before the answer",
        expected=len(answered_refs),
        got=len(answered_refs & refs),
    )
    proof.record(
        f"{scenario}: after restart, a new booking",
        tried="GET + POST a fresh link on the restarted server",
        expected="303",
        got=after[0],
    )
    proof.record(
        f"{scenario}: committed bookings whose booking.created webhook arrived",
        tried=f"{len(committed)} committed; {len(receivers.hooks)} deliveries, {redelivered} redelivered",
        expected=len(committed),
        got=sum(1 for b in committed if b.ref in ids_seen),
    )
    proof.record(
        f"{scenario}: webhooks whose event id differs between deliveries or from the outbox",
        tried=tried,
        expected=0,
        got=sum(1 for b in committed if b.ref in ids_seen and ids_seen[b.ref] != {hook_event.get(b.ref)}),
    )
    proof.record(
        f"{scenario}: committed bookings whose 2 emails (invitee, owner) arrived",
        tried=f"{len(committed)} committed; {len(receivers.mails)} emails, {mail_copies} sent again",
        expected=len(committed),
        got=mailed,
    )
    proof.record(
        f"{scenario}: webhooks or emails about a booking that did not commit",
        tried=tried,
        expected=0,
        got=stray_hooks + stray_mails,
    )
    proof.record(
        f"{scenario}: outbox messages due but not delivered after the drain",
        tried=f"{len(rows)} outbox messages",
        expected=0,
        got=undelivered,
    )
