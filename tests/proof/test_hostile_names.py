"""Hostile names against a running worker (issue 13, defect 1).

A line break in an invitee's name once reached the owner's Subject; the
email library raised, the worker exited, and, restarted, took the same
message again: no email or webhook went out any more. Here gunicorn (4
workers) and the outbox worker (`flask --app app worker`) run on SQLite and
on PostgreSQL with a real SMTP server (aiosmtpd). Names, emails and labels
holding line breaks and controls are posted to the booking form and the
API; then a message made to fail on purpose, and one from before the rule
with a line break in its Subject, are queued among good bookings.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from oncecal.extensions import db
from oncecal.models import Booking, DeliveryAttempt, OutboxMessage, utcnow
from tests.conftest import fan_out_events
from tests.proof.harness import BACKENDS, Site, fresh_database, make_site, wait_until
from tests.support.servers import free_port, start_worker, stop_group

pytestmark = pytest.mark.slow

# Each breaks a header or a line in its own way: LF, CR, CRLF, Unicode's line
# and paragraph separators, NEL, a vertical tab, NUL, DEL, ESC, a tab.
HOSTILE = ["\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x00", "\x7f", "\x1b", "\t"]
DELIVERY_TIMEOUT = 60


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps each message's recipients and Subject."""

    received: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.received += [(to, str(message["Subject"])) for to in envelope.rcpt_tos]
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler, port = Mailbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def _refused_with_field_error(response: Any, field_error: str) -> bool:
    return response.status_code == 400 and field_error in response.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_hostile_names_are_refused_and_a_poisoned_message_stops_nothing(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    backend: str,
    mailbox: tuple[Mailbox, int],
    proof: Any,
) -> None:
    handler, smtp_port = mailbox
    with fresh_database(backend, tmp_path, request) as url, make_site(url, tmp_path) as site:
        calendar_id = site.new_calendar(name="Strategy call")
        slug = site.calendar_slug(calendar_id)
        issued = site.issue_links(calendar_id, 1 + proof.scale(2, 20))
        tokens = [token for _id, token in issued]

        # The booking form: every hostile name and email refused, the link left unused.
        page = site.load_form(tokens[0])
        answers: Counter[str] = Counter()
        for bad in HOSTILE:
            for field_name, value in (
                ("name", f"Ivy{bad}Bcc: eve@example.com"),
                ("email", f"ivy{bad}@example.com"),
            ):
                response = site.post_form(tokens[0], page.form(**{field_name: value}))
                error = f'id="{field_name}-error">This field takes one line of text; remove the'
                answers[
                    "400 with the field's error"
                    if _refused_with_field_error(response, error)
                    else str(response.status_code)
                ] += 1
        tried = len(HOSTILE) * 2
        proof.record(
            "hostile names and emails on the booking form",
            tried=f"{tried} POSTs of /l/<token> with LF, CR, CRLF, U+2028, U+2029, NEL, VT, NUL, DEL, ESC, tab",
            expected=f"400 with the field's error × {tried}, link unused",
            got=", ".join(f"{k} × {n}" for k, n in sorted(answers.items()))
            + (", link unused" if site.link_uses([issued[0][0]]) == {issued[0][0]: 0} else ", link USED"),
        )

        # The API: every one-line field keyed in the 422's errors, nothing created.
        links_before = len(site.links_of(calendar_id))
        keyed: Counter[str] = Counter()
        for bad in HOSTILE:
            body = {
                "calendar": slug,
                "label": f"Ann{bad}Lee",
                "external_id": f"42{bad}",
                "prefill": {"name": f"Ann{bad}Bcc: eve@example.com", "email": f"ann{bad}@example.com"},
            }
            response = site.api_create_link(body)
            errors = response.json().get("errors", {}) if response.status_code == 422 else {}
            fields = {"label", "external_id", "prefill.name", "prefill.email"}
            keyed[
                "422 keyed by all 4 fields"
                if set(errors) == fields
                else f"{response.status_code} {sorted(errors)}"
            ] += 1
        proof.record(
            "hostile labels, ids and prefills through the API",
            tried=f"{len(HOSTILE)} creates, each with label, external_id, prefill.name and prefill.email hostile",
            expected=f"422 keyed by all 4 fields × {len(HOSTILE)}, 0 links made",
            got=", ".join(f"{k} × {n}" for k, n in sorted(keyed.items()))
            + f", {len(site.links_of(calendar_id)) - links_before} links made",
        )

        # Good bookings, a message that raises, and an old row with a line break in its Subject.
        good_refs = []
        for i, token in enumerate(tokens[1:]):
            form = site.load_form(token).form(name=f"Invitee {i}", email=f"invitee{i}@example.com")
            response = site.post_form(token, form)
            assert response.status_code == 303, response.status_code
            good_refs.append(response.headers["Location"].rpartition("/")[2])
        poisoned, old_row = _queue_poison(site, good_refs[0])
        good = [
            m.id
            for m in site.outbox_rows()
            if m.id not in (poisoned, old_row) and m.event_type == "booking.created"
        ]

        worker_env = {
            **site.env,
            "ONCECAL_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
            "ONCECAL_BASE_URL": site.url,
        }
        worker = start_worker(worker_env, tmp_path)
        try:
            wait_until(
                lambda: _status(site, [*good, old_row]) == {"delivered"} and _attempts(site, poisoned) >= 1,
                DELIVERY_TIMEOUT,
                "good messages delivered and the poisoned one tried",
            )
            alive = worker.poll() is None
        finally:
            stop_group(worker)
        rows = {m.id: m for m in site.outbox_rows()}
        bad_row = rows[poisoned]
        with handler.lock:
            subjects = [subject for to, subject in handler.received]
            injected = sum(1 for to, _subject in handler.received if to == "eve@example.com")
        one_line_subjects = sum(1 for s in subjects if "\n" not in s and "\r" not in s and "\u2028" not in s)
        proof.record(
            "a poisoned outbox message next to good ones, the worker running",
            tried=f"{len(good)} good emails, 1 made to raise while rendering, 1 old row with CR, LF and "
            "U+2028 in its Subject; aiosmtpd",
            expected=f"{len(good) + 1} delivered (old row's Subject on one line), poisoned retrying with its "
            "error, 0 mails to the injected Bcc, worker alive",
            got=f"{sum(1 for i in [*good, old_row] if rows[i].status == 'delivered')} delivered "
            f"({one_line_subjects}/{len(subjects)} Subjects on one line), poisoned "
            f"{'retrying' if bad_row.status == 'pending' else bad_row.status} with "
            f"{(bad_row.last_error or 'no error').split(':')[0]}, {injected} mails to the injected Bcc, "
            f"worker {'alive' if alive else 'EXITED'}",
            ok=all(rows[i].status == "delivered" for i in [*good, old_row])
            and one_line_subjects == len(subjects) == len(good) + 1
            and bad_row.status == "pending"
            and (bad_row.last_error or "").startswith("KeyError")
            and injected == 0
            and alive,
        )


def _queue_poison(site: Site, booking_ref: str) -> tuple[int, int]:
    """Queue an email made to raise (its facts lack what the notice needs) and an old row, both due first."""
    with site.app.app_context():
        booking = db.session.scalar(sa.select(Booking).where(Booking.ref == booking_ref))
        assert booking is not None
        due = utcnow() - timedelta(minutes=1)
        fan_out_events()  # the good bookings' emails, as the worker makes them
        poisoned = OutboxMessage(
            kind="email",
            event_id="msg_poisoned",
            event_type="booking.created",
            owner_id=site.owner_id,
            payload={"to": "olga@example.com", "subject": "Poisoned", "booking": {"id": booking.id}},
            next_attempt_at=due,
        )
        confirmation = db.session.scalar(
            sa.select(OutboxMessage).where(OutboxMessage.payload["to"].as_string() == booking.invitee_email)
        )
        assert confirmation is not None
        old_row = OutboxMessage(
            kind="email",
            event_id="msg_old_row",
            event_type="booking.created",
            owner_id=site.owner_id,
            payload={**confirmation.payload, "subject": "New booking: Ivy\r\nBcc: eve@example.com\u2028"},
            next_attempt_at=due,
        )
        db.session.add_all([poisoned, old_row])
        db.session.commit()
        ids = poisoned.id, old_row.id
        db.session.remove()
        return ids


def _status(site: Site, ids: list[int]) -> set[str]:
    return {m.status for m in site.outbox_rows() if m.id in ids}


def _attempts(site: Site, message_id: int) -> int:
    with site.app.app_context():
        count = db.session.scalar(
            sa.select(sa.func.count(DeliveryAttempt.id)).where(DeliveryAttempt.message_id == message_id)
        )
        db.session.remove()
        return count or 0
