"""Emails end to end: a real SMTP server (aiosmtpd), the real worker process, parsed messages.

The test process seeds and acts through the app (test client); the worker
runs as `flask --app app worker --once` on the same SQLite file and sends
what is due to an aiosmtpd server on 127.0.0.1, whose handler keeps every
envelope. Each message is parsed back, and its .ics read with icalendar.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html import escape, unescape
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar as ICalendar

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import (
    Booking,
    Calendar,
    DeliveryAttempt,
    OutboxMessage,
    Owner,
    PasswordReset,
    utcnow,
)
from oncecal.services import links, owners
from oncecal.services.ics import booking_uid
from oncecal.templating import long_date
from tests.conftest import ALL_DAY, detached_booking, fan_out_events
from tests.support.apps import TEST_SECRET, make_test_app
from tests.support.pages import BookingPage
from tests.support.servers import BIN, PROJECT_ROOT, free_port, server_env

MAIL_FROM = "OnceCal Test <mailer@oncecal.test>"
OWNER_EMAIL = "olga@example.com"
INVITEE_EMAIL = "ivy@example.com"
PASSWORD = "correct horse battery"
LOCATION = "Room 12, 1 Main Street"


# --- the SMTP server -------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Collector:
    """An aiosmtpd handler that keeps every message it is given."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def take(self) -> list[Received]:
        taken, self.received[:] = list(self.received), []
        return taken


@dataclass
class SmtpServer:
    port: int
    collector: Collector
    controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), Collector())
    server.start()
    yield server
    server.stop()


# --- the site: an app for seeding and acting, and the worker process -------------------------


@dataclass
class Site:
    app: Flask
    database_url: str

    def worker(
        self, smtp_url: str | None, base_url: str = "http://localhost", **config: str
    ) -> subprocess.CompletedProcess[str]:
        """Run the real worker once (``config``: more ONCECAL_* settings); return its finished process."""
        extra = {"MAIL_FROM": MAIL_FROM, **config}
        if smtp_url:
            extra["SMTP_URL"] = smtp_url
        env = server_env(self.database_url, TEST_SECRET, base_url=base_url, **extra)
        result = subprocess.run(
            [str(BIN / "flask"), "--app", "app", "worker", "--once"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def outbox(self, kind: str = "email") -> list[OutboxMessage]:
        """The deliveries of ``kind`` the events have made so far (their fan-out run first), oldest first."""
        with self.app.app_context():
            fan_out_events()
            rows = db.session.scalars(
                sa.select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
            ).all()
            db.session.expunge_all()
            return list(rows)

    def booking(self, ref: str) -> Booking:
        return detached_booking(self.app, ref)

    def make_reminder_due(self, ref: str) -> None:
        with self.app.app_context():
            db.session.execute(
                sa.update(Booking).where(Booking.ref == ref).values(remind_at=utcnow() - timedelta(seconds=1))
            )
            db.session.commit()

    def make_due(self, *message_ids: int) -> None:
        with self.app.app_context():
            db.session.execute(
                sa.update(OutboxMessage)
                .where(OutboxMessage.id.in_(message_ids))
                .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )
            db.session.commit()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path / 'mail.sqlite3'}"
    app = make_test_app(url)
    with app.app_context():
        db.create_all()
    yield Site(app, url)
    with app.app_context():
        db.engine.dispose()


@dataclass
class Seeded:
    calendar_id: int
    slug: str
    token: str


def seed(site: Site, **calendar_fields) -> Seeded:
    with site.app.app_context():
        owner = owners.create_owner(OWNER_EMAIL, "Olga Owner", PASSWORD)
        calendar = Calendar(
            owner_id=owner.id,
            name="Strategy call",
            slug="strategy",
            weekly_hours=ALL_DAY,
            min_notice_minutes=0,
            location=LOCATION,
            **calendar_fields,
        )
        db.session.add(calendar)
        db.session.commit()
        _, token = links.issue_link(calendar, runtime().link_keys, now=utcnow())
        return Seeded(calendar.id, calendar.slug, token)


def day(days_ahead: int) -> str:
    return (utcnow() + timedelta(days=days_ahead)).date().isoformat()


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def book(client, token: str, days_ahead: int = 3, origin: str = "http://localhost") -> str:
    page = client.get(f"/l/{token}?tz=UTC&date={day(days_ahead)}", base_url=origin)
    assert page.status_code == 200
    form = BookingPage.parse(page.get_data(as_text=True)).form(
        name="Ivy Invitee", email=INVITEE_EMAIL, notes="Looking forward"
    )
    response = client.post(f"/l/{token}", data=form, base_url=origin)
    assert response.status_code == 303, response.status_code
    return urlsplit(response.headers["Location"]).path.removeprefix("/b/")


def logged_in_owner(site: Site, app: Flask | None = None) -> FlaskClient:
    """A client logged in as the seeded owner, through the login form."""
    client = (app or site.app).test_client()
    login = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": login, "email": OWNER_EMAIL, "password": PASSWORD})
    assert response.status_code == 302
    return client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return unescape(match.group(1))


def tried(result: subprocess.CompletedProcess[str]) -> int:
    match = re.search(r"Delivered or tried (\d+) message", result.stdout)
    assert match, result.stdout + result.stderr
    return int(match.group(1))


# --- reading a message back --------------------------------------------------------------------


@dataclass
class Parsed:
    to: str
    subject: str
    text: str
    html: str
    ics_method: str | None
    ics: ICalendar | None

    @property
    def event(self):
        assert self.ics is not None
        return self.ics.walk("VEVENT")[0]


def parse(received: Received) -> Parsed:
    message = received.message
    assert received.mail_from == "mailer@oncecal.test"
    assert message["From"] == MAIL_FROM and message["Date"] and message["Message-ID"]
    assert [str(message["To"])] == received.rcpt_tos
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "the email needs a text and an HTML part"
    calendars = [part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"]
    ics = method = None
    if calendars:
        (part,) = calendars
        assert message.get_content_type() == "multipart/mixed"
        assert part.get_filename() == "invite.ics"
        method = part.get_param("method")
        ics = ICalendar.from_ical(part.get_content())
        assert str(ics["METHOD"]) == method
        assert str(ics["VERSION"]) == "2.0" and ics["PRODID"]
    return Parsed(
        received.rcpt_tos[0], str(message["Subject"]), text.get_content(), html.get_content(), method, ics
    )


def by_recipient(received: list[Received]) -> dict[str, Parsed]:
    parsed = [parse(r) for r in received]
    recipients = [p.to for p in parsed]
    assert len(set(recipients)) == len(recipients), recipients
    return {p.to: p for p in parsed}


def check_event(
    mail: Parsed, booking: Booking, *, method: str, sequence: int, status: str = "CONFIRMED"
) -> None:
    assert mail.ics_method == method
    event = mail.event
    assert str(event["UID"]) == booking_uid(booking)
    assert booking.ref not in str(event["UID"])
    assert int(event["SEQUENCE"]) == sequence
    assert event.decoded("DTSTART") == booking.start_at
    assert event.decoded("DTEND") == booking.end_at
    assert str(event["LOCATION"]) == LOCATION
    assert str(event["STATUS"]) == status
    assert str(event["ORGANIZER"]) == f"mailto:{OWNER_EMAIL}"
    assert str(event["ATTENDEE"]) == f"mailto:{INVITEE_EMAIL}"
    assert event["DTSTAMP"]


# --- the booking's life cycle ------------------------------------------------------------------


def test_booking_reschedule_and_cancel_each_email_both_with_one_uid(site: Site, smtp: SmtpServer) -> None:
    seeded = seed(site)
    client = site.app.test_client()

    # Booked: a confirmation to the invitee, a notice to the owner, a reminder due a day before.
    ref = book(client, seeded.token)
    booking = site.booking(ref)
    assert booking.remind_at == booking.start_at - timedelta(hours=24)
    assert tried(site.worker(smtp.url)) == 2
    mails = by_recipient(smtp.collector.take())
    assert set(mails) == {INVITEE_EMAIL, OWNER_EMAIL}
    invitee, owner = mails[INVITEE_EMAIL], mails[OWNER_EMAIL]
    assert invitee.subject == "Confirmed: Strategy call with Olga Owner"
    assert owner.subject == "New booking: Ivy Invitee"
    manage_url = f"http://localhost/b/{ref}"
    assert manage_url in invitee.text and f'href="{manage_url}"' in invitee.html
    assert manage_url in str(invitee.event["DESCRIPTION"]).replace("\r\n ", "")
    assert manage_url not in owner.text and manage_url not in owner.html
    assert "Ivy Invitee (ivy@example.com) booked a time" in owner.text and "Looking forward" in owner.text
    for mail in (invitee, owner):
        check_event(mail, booking, method="REQUEST", sequence=0)
        assert LOCATION in mail.text and escape(LOCATION) in mail.html
    uid = str(invitee.event["UID"])

    # Rescheduled: the same event (UID) with SEQUENCE 1 and the new time; a new reminder.
    page = BookingPage.parse(client.get(f"/b/{ref}/reschedule?tz=UTC&date={day(5)}").get_data(as_text=True))
    response = client.post(f"/b/{ref}/reschedule", data=page.form(page.slots[3]))
    assert response.status_code == 303
    moved = site.booking(ref)
    assert iso(moved.start_at) == page.slots[3] and moved.start_at != booking.start_at
    assert moved.remind_at == moved.start_at - timedelta(hours=24)
    assert tried(site.worker(smtp.url)) == 2
    mails = by_recipient(smtp.collector.take())
    assert set(mails) == {INVITEE_EMAIL, OWNER_EMAIL}
    assert mails[INVITEE_EMAIL].subject == "Moved: Strategy call with Olga Owner"
    assert mails[OWNER_EMAIL].subject == "Moved: Ivy Invitee"
    for mail in mails.values():
        check_event(mail, moved, method="REQUEST", sequence=1)
        assert str(mail.event["UID"]) == uid
    for mail in mails.values():  # the body shows the new day, not the old one
        assert long_date(moved.start_at, UTC) in mail.text and long_date(moved.start_at, UTC) in mail.html
        assert long_date(booking.start_at, UTC) not in mail.text

    # Cancelled with a reason: METHOD:CANCEL, same UID, SEQUENCE 2; the reminder is dropped.
    manage = client.get(f"/b/{ref}").get_data(as_text=True)
    reason = "Something came up, sorry & thanks"
    response = client.post(f"/b/{ref}/cancel", data={"csrf_token": csrf_of(manage), "reason": reason})
    assert response.status_code == 303
    cancelled = site.booking(ref)
    assert cancelled.remind_at is None
    assert tried(site.worker(smtp.url)) == 2
    mails = by_recipient(smtp.collector.take())
    assert set(mails) == {INVITEE_EMAIL, OWNER_EMAIL}
    assert mails[INVITEE_EMAIL].subject == "Cancelled: Strategy call with Olga Owner"
    assert mails[OWNER_EMAIL].subject == "Cancelled: Ivy Invitee"
    assert "Ivy Invitee cancelled" in mails[OWNER_EMAIL].text
    for mail in mails.values():
        check_event(mail, cancelled, method="CANCEL", sequence=2, status="CANCELLED")
        assert str(mail.event["UID"]) == uid
        assert reason in mail.text and escape(reason) in mail.html

    # Nothing is left to send, and every email was delivered on its first try.
    assert {m.status for m in site.outbox()} == {"delivered"}
    sent = [m for m in site.outbox() if m.status == "delivered"]
    assert len(sent) == 6 and all(m.attempts == 1 and m.delivered_at for m in sent)


def test_the_reminder_goes_to_the_invitee_when_due(site: Site, smtp: SmtpServer) -> None:
    seeded = seed(site, reminder_minutes=90)
    client = site.app.test_client()
    ref = book(client, seeded.token)
    booking = site.booking(ref)
    assert booking.remind_at == booking.start_at - timedelta(minutes=90)
    assert tried(site.worker(smtp.url)) == 2  # not due: the confirmations only
    smtp.collector.take()

    # Made due, it goes out, once.
    site.make_reminder_due(ref)
    assert tried(site.worker(smtp.url)) == 1
    (mail,) = [m for m in map(parse, smtp.collector.take()) if m.subject.startswith("Reminder")]
    assert mail.to == INVITEE_EMAIL
    assert mail.subject == "Reminder: Strategy call with Olga Owner"
    assert "A reminder of your meeting" in mail.text and f"http://localhost/b/{ref}" in mail.text
    check_event(mail, booking, method="REQUEST", sequence=0)
    (reminder,) = [m for m in site.outbox() if m.event_type == "booking.reminder"]
    assert reminder.status == "delivered" and site.booking(ref).remind_at is None
    assert tried(site.worker(smtp.url)) == 0


@pytest.mark.parametrize(("minutes", "expected"), [(None, None), (120, timedelta(hours=2))])
def test_the_reminder_follows_the_calendar_setting(site: Site, minutes, expected) -> None:
    seeded = seed(site, reminder_minutes=minutes)
    ref = book(site.app.test_client(), seeded.token)
    booking = site.booking(ref)
    assert booking.remind_at == (None if expected is None else booking.start_at - expected)
    assert len([m for m in site.outbox() if m.event_type == "booking.created"]) == 2


def test_a_calendar_made_in_the_dashboard_with_reminders_off_sends_none(site: Site) -> None:
    with site.app.app_context():
        owners.create_owner(OWNER_EMAIL, "Olga Owner", PASSWORD)
    client = site.app.test_client()
    login = csrf_of(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"csrf_token": login, "email": OWNER_EMAIL, "password": PASSWORD})
    form = client.get("/dashboard/calendars/new").get_data(as_text=True)
    data = {
        "csrf_token": csrf_of(form),
        "name": "No reminders",
        "slug": "quiet",
        "timezone": "UTC",
        "duration_minutes": "30",
        "min_notice_minutes": "0",
        "days_ahead": "30",
        "buffer_minutes": "0",
        "location": "",
        **{f"hours_{i}": "00:00-24:00" for i in range(7)},
        "date_overrides": "",
        "default_link_expiry_days": "",
        "public_page_enabled": "y",
        "allow_cancel": "y",
        "allow_reschedule": "y",
        "change_cutoff_hours": "24",
        "reminder_hours": "",
        "embed_origins": "",
    }
    response = client.post("/dashboard/calendars/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    with site.app.app_context():
        calendar = db.session.scalar(sa.select(Calendar).where(Calendar.slug == "quiet"))
        assert calendar is not None and calendar.reminder_minutes is None
        _, token = links.issue_link(calendar, runtime().link_keys, now=utcnow())
    book(site.app.test_client(), token)
    assert [m.event_type for m in site.outbox()] == ["booking.created", "booking.created"]


def test_the_owner_cancels_from_the_dashboard_with_a_message(site: Site, smtp: SmtpServer) -> None:
    seeded = seed(site)
    invitee_client, owner_client = site.app.test_client(), site.app.test_client()
    ref = book(invitee_client, seeded.token)

    login = owner_client.get("/login").get_data(as_text=True)
    response = owner_client.post(
        "/login", data={"csrf_token": csrf_of(login), "email": OWNER_EMAIL, "password": PASSWORD}
    )
    assert response.status_code == 302
    booking = site.booking(ref)
    page = f"/dashboard/calendars/{seeded.calendar_id}/bookings"
    token = csrf_of(owner_client.get(page).get_data(as_text=True))
    message = "I am ill this week, please book another time."
    response = owner_client.post(
        f"/dashboard/bookings/{booking.id}/cancel", data={"csrf_token": token, "message": message}
    )
    assert response.status_code == 302
    cancelled = site.booking(ref)
    assert cancelled.cancelled_by == "owner" and cancelled.cancel_reason == message

    assert tried(site.worker(smtp.url)) == 4  # the two confirmations, then the two cancellations
    received = [r for r in smtp.collector.take() if str(r.message["Subject"]).startswith("Cancelled")]
    mails = by_recipient(received)
    invitee, owner = mails[INVITEE_EMAIL], mails[OWNER_EMAIL]
    assert "Olga Owner cancelled your meeting" in invitee.text
    assert message in invitee.text and message in invitee.html
    assert "You cancelled this booking" in owner.text
    for mail in (invitee, owner):
        check_event(mail, cancelled, method="CANCEL", sequence=1, status="CANCELLED")
    assert invitee_client.get(f"/b/{ref}").get_data(as_text=True).count("This booking was cancelled") == 1


@pytest.mark.parametrize(
    ("rules", "offer"),
    [
        ({}, "View, reschedule or cancel"),
        ({"allow_cancel": False}, "View or reschedule"),
        ({"allow_reschedule": False}, "View or cancel"),
        ({"change_cutoff_hours": 24 * 30}, "View the booking"),  # closed already: the booking is sooner
    ],
)
def test_the_invitees_email_offers_only_the_changes_allowed(
    site: Site, smtp: SmtpServer, rules, offer
) -> None:
    seeded = seed(site, **rules)
    ref = book(site.app.test_client(), seeded.token)
    assert tried(site.worker(smtp.url)) == 2
    invitee = by_recipient(smtp.collector.take())[INVITEE_EMAIL]
    manage_url = f"http://localhost/b/{ref}"
    assert f"{offer}: {manage_url}" in invitee.text
    assert f'href="{manage_url}"' in invitee.html and f">{offer}</a>" in invitee.html
    for other in {"View, reschedule or cancel", "View or reschedule", "View or cancel"} - {offer}:
        assert other not in invitee.text and other not in invitee.html


def test_deleting_a_calendar_emails_each_invitee_a_cancellation(site: Site, smtp: SmtpServer) -> None:
    seeded = seed(site)
    invitee_client, owner_client = site.app.test_client(), site.app.test_client()
    ref = book(invitee_client, seeded.token)
    assert tried(site.worker(smtp.url)) == 2
    smtp.collector.take()

    login = owner_client.get("/login").get_data(as_text=True)
    owner_client.post(
        "/login", data={"csrf_token": csrf_of(login), "email": OWNER_EMAIL, "password": PASSWORD}
    )
    page = owner_client.get(f"/dashboard/calendars/{seeded.calendar_id}/delete").get_data(as_text=True)
    upcoming = re.search(r'name="upcoming" type="hidden" value="([^"]*)"', page)
    assert upcoming and "Ivy Invitee" in page
    message = "I am closing this calendar; please book with my colleague."
    response = owner_client.post(
        f"/dashboard/calendars/{seeded.calendar_id}/delete",
        data={"csrf_token": csrf_of(page), "upcoming": upcoming.group(1), "message": message},
    )
    assert response.status_code == 302
    assert site.booking(ref).remind_at is None

    assert tried(site.worker(smtp.url)) == 2
    mails = by_recipient(smtp.collector.take())
    invitee, owner = mails[INVITEE_EMAIL], mails[OWNER_EMAIL]
    assert invitee.subject == "Cancelled: Strategy call with Olga Owner"
    assert "Olga Owner cancelled your meeting" in invitee.text and message in invitee.text
    assert "You cancelled this booking" in owner.text
    cancelled = site.booking(ref)
    for mail in (invitee, owner):
        check_event(mail, cancelled, method="CANCEL", sequence=1, status="CANCELLED")


def test_without_a_base_url_emails_link_to_the_site_the_booking_was_made_on(
    site: Site, smtp: SmtpServer
) -> None:
    """The worker has no request: the origin of the booking's request is kept with the email."""
    seeded = seed(site)
    app = make_test_app(site.database_url, BASE_URL=None)
    ref = book(app.test_client(), seeded.token, origin="https://book.example.org")
    assert tried(site.worker(smtp.url, base_url="")) == 2
    mails = by_recipient(smtp.collector.take())
    assert f"https://book.example.org/b/{ref}" in mails[INVITEE_EMAIL].text
    assert "https://book.example.org/dashboard/calendars/" in mails[OWNER_EMAIL].text
    assert "127.0.0.1" not in mails[INVITEE_EMAIL].text + mails[OWNER_EMAIL].text
    with app.app_context():
        db.engine.dispose()


def test_an_email_about_a_booking_that_is_gone_fails_at_once(site: Site, smtp: SmtpServer) -> None:
    seeded = seed(site)
    ref = book(site.app.test_client(), seeded.token)
    assert len(site.outbox()) == 2  # the two confirmations are made: then the booking goes
    with site.app.app_context():
        db.session.execute(sa.delete(Booking).where(Booking.ref == ref))
        db.session.commit()
    assert tried(site.worker(smtp.url)) == 2
    confirmations = [m for m in site.outbox() if m.event_type == "booking.created"]
    assert [(m.status, m.attempts) for m in confirmations] == [("failed", 1), ("failed", 1)]
    assert all("no longer exists" in (m.last_error or "") for m in confirmations)
    assert smtp.collector.take() == []


# --- failures and the log ----------------------------------------------------------------------


def test_an_smtp_server_that_is_down_never_blocks_a_booking_and_is_retried(site: Site) -> None:
    seeded = seed(site)
    smtp = SmtpServer(free_port(), Collector())  # nothing listens on its port yet
    client = site.app.test_client()
    started = time.monotonic()
    ref = book(client, seeded.token)
    assert time.monotonic() - started < 5
    assert client.get(f"/b/{ref}").status_code == 200

    before = utcnow()
    result = site.worker(smtp.url)
    assert tried(result) == 2
    confirmations = [m for m in site.outbox() if m.event_type == "booking.created"]
    assert len(confirmations) == 2
    for message in confirmations:
        assert message.status == "pending" and message.attempts == 1
        assert message.next_attempt_at > before + timedelta(seconds=5)
        assert "ConnectionRefusedError" in (message.last_error or "")
    with site.app.app_context():
        attempts = db.session.scalars(sa.select(DeliveryAttempt).order_by(DeliveryAttempt.id)).all()
        assert [a.message_id for a in attempts] == [m.id for m in confirmations]
        assert all(a.status_code is None and "ConnectionRefusedError" in (a.error or "") for a in attempts)

    # The owner sees the failed sends, whom they were for and why.
    owner_client = site.app.test_client()
    login = csrf_of(owner_client.get("/login").get_data(as_text=True))
    owner_client.post("/login", data={"csrf_token": login, "email": OWNER_EMAIL, "password": PASSWORD})
    page = unescape(owner_client.get("/dashboard/integrations").get_data(as_text=True))
    assert "2 deliveries have failed" in page
    assert f"Email to {INVITEE_EMAIL}" in page and f"Email to {OWNER_EMAIL}" in page
    assert page.count(">Retrying</span>") == 2 and page.count("ConnectionRefusedError") == 2

    smtp.start()
    try:
        site.make_due(*(m.id for m in confirmations))
        assert tried(site.worker(smtp.url)) == 2
        mails = by_recipient(smtp.collector.take())
    finally:
        smtp.stop()
    assert set(mails) == {INVITEE_EMAIL, OWNER_EMAIL}
    check_event(mails[INVITEE_EMAIL], site.booking(ref), method="REQUEST", sequence=0)
    confirmations = [m for m in site.outbox() if m.event_type == "booking.created"]
    assert all(m.status == "delivered" and m.attempts == 2 and m.last_error is None for m in confirmations)
    with site.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(DeliveryAttempt.id))) == 4


def test_without_an_smtp_url_the_worker_prints_the_email_and_says_so(site: Site) -> None:
    seeded = seed(site)
    book(site.app.test_client(), seeded.token)
    result = site.worker(None)
    assert tried(result) == 2
    log = result.stdout + result.stderr
    assert "Confirmed: Strategy call with Olga Owner" in log
    assert "New booking: Ivy Invitee" in log
    assert f"To: {INVITEE_EMAIL}" in log and f"To: {OWNER_EMAIL}" in log
    assert "set ONCECAL_SMTP_URL" in log
    # Printed is not delivered: nobody got the mail, and the data says so.
    printed = [m for m in site.outbox() if m.event_type == "booking.created"]
    assert [(m.status, m.delivered_at) for m in printed] == [("printed", None), ("printed", None)]
    with site.app.app_context():
        attempts = db.session.scalars(sa.select(DeliveryAttempt)).all()
        assert [(a.status_code, a.error) for a in attempts] == [(None, None), (None, None)]

    page = unescape(logged_in_owner(site).get("/dashboard/integrations").get_data(as_text=True))
    assert page.count(">Printed, no SMTP configured</span>") == 2
    assert "Delivered" not in page and "· 250" not in page
    assert page.count("printed to the worker’s log") == 2


def test_the_dashboard_warns_that_emails_are_not_sent_until_smtp_is_set(site: Site) -> None:
    seed(site)
    banner = "Emails are not being sent"
    owner = logged_in_owner(site)
    for path in ("/dashboard/", "/dashboard/integrations", "/dashboard/profile"):
        page = owner.get(path).get_data(as_text=True)
        assert page.count(banner) == 1, path
        assert "ONCECAL_SMTP_URL" in page
    assert banner not in site.app.test_client().get("/login").get_data(as_text=True)

    configured = make_test_app(site.database_url, SMTP_URL="smtp://127.0.0.1:2525")
    assert banner not in logged_in_owner(site, configured).get("/dashboard/").get_data(as_text=True)
    with configured.app_context():
        db.engine.dispose()


# --- one message that raises, next to good ones ---------------------------------------------


def poison(site: Site, booking_ref: str, **payload_facts: object) -> int:
    """Queue an email whose rendering raises (its facts lack the keys the notice needs), due first."""
    booking = site.booking(booking_ref)
    with site.app.app_context():
        row = OutboxMessage(
            kind="email",
            event_id="msg_poison",
            event_type="booking.created",
            owner_id=db.session.scalar(sa.select(Owner.id).where(Owner.email == OWNER_EMAIL)),
            payload={"to": OWNER_EMAIL, "subject": "Poison", "booking": {"id": booking.id, **payload_facts}},
            next_attempt_at=utcnow() - timedelta(minutes=1),
        )
        db.session.add(row)
        db.session.commit()
        return row.id


def test_a_message_that_raises_fails_alone_and_the_worker_sends_the_others(
    site: Site, smtp: SmtpServer
) -> None:
    seeded = seed(site)
    ref = book(site.app.test_client(), seeded.token)
    poisoned = poison(site, ref)

    result = site.worker(smtp.url, WEBHOOK_RETRY_DELAYS="[600]")
    assert tried(result) == 3  # the poisoned message, then both confirmations
    assert "KeyError" in result.stdout + result.stderr
    assert {parse(r).to for r in smtp.collector.take()} == {INVITEE_EMAIL, OWNER_EMAIL}
    rows = {m.id: m for m in site.outbox()}
    bad = rows.pop(poisoned)
    assert (bad.status, bad.attempts) == ("pending", 1) and bad.next_attempt_at > utcnow()
    assert (bad.last_error or "").startswith("KeyError")
    assert {m.status for m in rows.values() if m.event_type == "booking.created"} == {"delivered"}

    # Its last try: dead, with every attempt logged and the error kept.
    site.make_due(poisoned)
    assert tried(site.worker(smtp.url, WEBHOOK_RETRY_DELAYS="[600]")) == 1
    (bad,) = [m for m in site.outbox() if m.id == poisoned]
    assert (bad.status, bad.attempts) == ("failed", 2)
    with site.app.app_context():
        errors = db.session.scalars(
            sa.select(DeliveryAttempt.error).where(DeliveryAttempt.message_id == poisoned)
        ).all()
        assert len(errors) == 2 and all((e or "").startswith("KeyError") for e in errors)
    assert smtp.collector.take() == []


def test_a_dead_email_is_sent_again_by_the_dashboards_retry(site: Site) -> None:
    seeded = seed(site)
    book(site.app.test_client(), seeded.token)
    smtp = SmtpServer(free_port(), Collector())  # nothing listens on its port yet
    confirmations = [m.id for m in site.outbox() if m.event_type == "booking.created"]
    for _ in range(2):  # one retry allowed: two refused connections and it is dead
        site.make_due(*confirmations)
        assert tried(site.worker(smtp.url, WEBHOOK_RETRY_DELAYS="[1]")) == 2
    assert {(m.status, m.attempts) for m in site.outbox() if m.id in confirmations} == {("failed", 2)}

    owner = logged_in_owner(site)
    page = owner.get("/dashboard/integrations").get_data(as_text=True)
    assert page.count(">Failed</span>") == 2
    for message_id in confirmations:
        assert f'action="/dashboard/deliveries/{message_id}/retry"' in page
    assert page.count('/retry"') == 2
    dead, other = confirmations

    # Only the owner, only with the form's CSRF token.
    with site.app.app_context():
        owners.create_owner("mallory@example.com", "Mallory", PASSWORD)
    mallory = site.app.test_client()
    login = csrf_of(mallory.get("/login").get_data(as_text=True))
    mallory.post("/login", data={"csrf_token": login, "email": "mallory@example.com", "password": PASSWORD})
    token = csrf_of(mallory.get("/dashboard/integrations").get_data(as_text=True))
    assert mallory.post(f"/dashboard/deliveries/{dead}/retry", data={"csrf_token": token}).status_code == 404
    assert owner.post(f"/dashboard/deliveries/{dead}/retry").status_code == 400
    assert {m.status for m in site.outbox() if m.id in confirmations} == {"failed"}

    response = owner.post(f"/dashboard/deliveries/{dead}/retry", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 302 and response.headers["Location"].endswith(
        "/dashboard/integrations#deliveries"
    )
    assert "Queued again" in owner.get("/dashboard/integrations").get_data(as_text=True)
    queued = {m.id: m for m in site.outbox()}
    assert (queued[dead].status, queued[dead].attempts) == ("pending", 0)
    assert queued[dead].next_attempt_at <= utcnow() and queued[other].status == "failed"

    smtp.start()
    try:
        assert tried(site.worker(smtp.url)) == 1
        assert len(smtp.collector.take()) == 1
    finally:
        smtp.stop()
    sent = {m.id: m for m in site.outbox()}
    assert sent[dead].status == "delivered" and sent[other].status == "failed"
    with site.app.app_context():
        logged = db.session.scalars(
            sa.select(DeliveryAttempt.status_code).where(DeliveryAttempt.message_id == dead)
        ).all()
    assert logged == [None, None, 250]  # the two refusals stay in the log


def test_an_old_name_with_a_line_break_is_sent_on_one_line(site: Site, smtp: SmtpServer) -> None:
    """A row written before names had to be one line must not stop anything (issue 13)."""
    seeded = seed(site)
    ref = book(site.app.test_client(), seeded.token)
    hostile = "Ivy\r\nBcc: eve@example.com"
    with site.app.app_context():
        booking = db.session.scalar(sa.select(Booking).where(Booking.ref == ref))
        booking.invitee_name = hostile
        fan_out_events()
        for message in db.session.scalars(sa.select(OutboxMessage)):
            message.payload = {**message.payload, "subject": f"New booking: {hostile}"}
        db.session.commit()

    assert tried(site.worker(smtp.url)) == 2
    received = smtp.collector.take()
    assert sorted(r.rcpt_tos[0] for r in received) == sorted([INVITEE_EMAIL, OWNER_EMAIL])
    for mail in received:
        assert str(mail.message["Subject"]) == "New booking: Ivy Bcc: eve@example.com"
        assert mail.message["Bcc"] is None
    assert {m.status for m in site.outbox() if m.event_type == "booking.created"} == {"delivered"}


def test_an_old_recipient_with_a_line_break_fails_at_once_and_alone(site: Site, smtp: SmtpServer) -> None:
    """An owner's address stored before the CLI checked it: retrying cannot mend it, so it fails at once."""
    seeded = seed(site)
    book(site.app.test_client(), seeded.token)
    with site.app.app_context():
        fan_out_events()
        notice = db.session.scalar(
            sa.select(OutboxMessage).where(OutboxMessage.payload["to"].as_string() == OWNER_EMAIL)
        )
        assert notice is not None
        notice.payload = {**notice.payload, "to": f"{OWNER_EMAIL}\nBcc: eve@example.com"}
        notice_id = notice.id
        db.session.commit()
    assert tried(site.worker(smtp.url)) == 2
    assert [r.rcpt_tos for r in smtp.collector.take()] == [[INVITEE_EMAIL]]
    (bad,) = [m for m in site.outbox() if m.id == notice_id]
    assert (bad.status, bad.attempts) == ("failed", 1)
    assert "is not one email address" in (bad.last_error or "")


# --- password reset ------------------------------------------------------------------------------


def test_password_reset_end_to_end(site: Site, smtp: SmtpServer) -> None:
    with site.app.app_context():
        owner_id = owners.create_owner(OWNER_EMAIL, "Olga Owner", PASSWORD).id
    client = site.app.test_client()

    def ask(email_address: str) -> str:
        form = client.get("/password/forgot").get_data(as_text=True)
        response = client.post("/password/forgot", data={"csrf_token": csrf_of(form), "email": email_address})
        assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
        flashed = re.search(
            r"If an account uses that email[^<]*", client.get("/login").get_data(as_text=True)
        )
        assert flashed, "no notice after asking for a reset"
        return flashed.group(0)

    # A device logged in before the reset; it must be logged out by it.
    elsewhere = site.app.test_client()
    login = csrf_of(elsewhere.get("/login").get_data(as_text=True))
    elsewhere.post("/login", data={"csrf_token": login, "email": OWNER_EMAIL, "password": PASSWORD})
    assert elsewhere.get("/dashboard/").status_code == 200

    assert ask("OLGA@example.com ") == ask("nobody@example.com")
    ask(OWNER_EMAIL)  # a second reset link, which the first one's use must end
    with site.app.app_context():
        resets = db.session.scalars(sa.select(PasswordReset).order_by(PasswordReset.id)).all()
        assert len(resets) == 2
        for reset in resets:
            assert reset.owner_id == owner_id and reset.expires_at - reset.created_at == timedelta(hours=1)

    assert tried(site.worker(smtp.url)) == 2
    received, later = smtp.collector.take()
    later_raw = re.search(r"/password/reset/(\S+)", parse(later).text).group(1)
    mail = parse(received)
    assert mail.to == OWNER_EMAIL and mail.subject == "Reset your OnceCal password"
    assert mail.ics is None
    match = re.search(r"http://localhost/password/reset/(\S+)", mail.text)
    assert match, mail.text
    raw = match.group(1)
    assert f'href="http://localhost/password/reset/{raw}"' in mail.html
    path = f"/password/reset/{raw}"

    # Only the token's SHA-256 is stored, and the outbox holds no token either.
    with site.app.app_context():
        row = db.session.execute(sa.select(PasswordReset.__table__).order_by(PasswordReset.id)).first()
        assert row.token_hash == hashlib.sha256(raw.encode()).hexdigest()
        assert all(raw not in str(value) for value in row)
        payloads = db.session.scalars(sa.select(OutboxMessage.payload)).all()
        assert len(payloads) == 2 and not any(raw in str(p) or later_raw in str(p) for p in payloads)

    form = client.get(path)
    assert form.status_code == 200
    new_password = "a much newer passphrase"
    response = client.post(
        path,
        data={
            "csrf_token": csrf_of(form.get_data(as_text=True)),
            "new": new_password,
            "confirm": new_password,
        },
    )
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200  # logged in
    assert client.get(path).status_code == 410  # single use
    assert client.get(f"/password/reset/{later_raw}").status_code == 410  # the other link ended too
    gone = elsewhere.get("/dashboard/")  # the other device is logged out
    assert gone.status_code == 302 and urlsplit(gone.headers["Location"]).path == "/login"

    fresh = site.app.test_client()
    login = csrf_of(fresh.get("/login").get_data(as_text=True))
    old = fresh.post("/login", data={"csrf_token": login, "email": OWNER_EMAIL, "password": PASSWORD})
    assert old.status_code == 400
    new = fresh.post("/login", data={"csrf_token": login, "email": OWNER_EMAIL, "password": new_password})
    assert new.status_code == 302 and fresh.get("/dashboard/").status_code == 200

    # Another reset link stops working after an hour.
    with site.app.app_context():
        owner = db.session.get_one(Owner, owner_id)
        _, _, second = owners.start_password_reset(owner.email, runtime().link_keys, utcnow())
        db.session.commit()
    assert site.app.test_client().get(f"/password/reset/{second}").status_code == 200
    with site.app.app_context():
        (pending,) = db.session.scalars(sa.select(PasswordReset).where(PasswordReset.used_at.is_(None)))
        pending.created_at -= timedelta(hours=1, seconds=1)
        pending.expires_at -= timedelta(hours=1, seconds=1)
        db.session.commit()
    assert site.app.test_client().get(f"/password/reset/{second}").status_code == 410
    assert site.app.test_client().get("/password/reset/not-a-token").status_code == 410
