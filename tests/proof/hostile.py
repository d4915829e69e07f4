"""Set-up shared by the bad-input, abuse and security proofs: apps, owners with everything, logins.

``seed_owner`` gives an owner a real password, a calendar, links (one booked
through the real form), an API key, a webhook endpoint and a password reset,
and returns every id, token and key as plain values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from oncecal.app_objects import runtime
from oncecal.extensions import db, limiter
from oncecal.models import (
    Booking,
    Calendar,
    CalendarSource,
    ConnectedCalendar,
    Connection,
    OutboxMessage,
    utcnow,
)
from oncecal.services import apikeys, links, owners, webhooks
from tests.conftest import ALL_DAY, fan_out_events
from tests.support.apps import make_test_app
from tests.support.pages import BookingPage

BACKENDS = ["sqlite", "postgresql"]
PASSWORD = "correct horse battery staple"


def database_url(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> str:
    """A fresh SQLite file, or the session's PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'proof.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@contextmanager
def fresh_app(url: str, **overrides: Any) -> Iterator[Flask]:
    """The app on an emptied schema of ``url``; its engine disposed afterwards."""
    # Flask-Limiter's one Limiter keeps the last app's RATELIMIT_ENABLED as its
    # default: say it every time, and leave it on for the apps that follow.
    overrides.setdefault("RATELIMIT_ENABLED", True)
    app = make_test_app(url, **overrides)
    with app.app_context():
        db.drop_all()
        db.create_all()
    try:
        yield app
    finally:
        limiter.enabled = True
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@dataclass
class Seeded:
    """One owner's objects, as plain values."""

    owner_id: int
    email: str
    name: str
    calendar_id: int
    slug: str
    calendar_key: str
    link_ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    booked_link_id: int = 0
    booking_id: int = 0
    booking_ref: str = ""
    api_key_id: int = 0
    api_key: str = ""
    endpoint_id: int = 0
    webhook_secret: str = ""
    reset_token: str = ""
    message_id: int = 0  # the booking's first email in the outbox
    connection_id: int = 0  # a feed, its calendar checked by the owner's calendar


def seed_owner(app: Flask, tag: str, *, links_count: int = 3, **calendar_fields: Any) -> Seeded:
    """An owner ``tag`` with a calendar, links (the first booked), a key, a webhook and a reset."""
    client = app.test_client()
    calendar_fields.setdefault("change_cutoff_hours", 0)  # the invitee may still cancel or move
    with app.app_context():
        owner = owners.create_owner(
            f"{tag}@example.com", calendar_fields.pop("owner_name", tag.title()), PASSWORD
        )
        calendar = Calendar(
            owner=owner,
            name=calendar_fields.pop("name", f"{tag.title()} call"),
            slug=f"{tag}-call",
            timezone="UTC",
            weekly_hours=ALL_DAY,
            min_notice_minutes=0,
            **calendar_fields,
        )
        db.session.add(calendar)
        db.session.commit()
        seeded = Seeded(owner.id, owner.email, owner.name, calendar.id, calendar.slug, calendar.key)
        for i in range(links_count):
            link, token = links.issue_link(
                calendar, runtime().link_keys, now=utcnow(), label=f"{tag} link {i}", source="share"
            )
            seeded.link_ids.append(link.id)
            seeded.tokens.append(token)
        key, seeded.api_key = apikeys.create_api_key(owner, f"{tag} key", utcnow())
        seeded.api_key_id = key.id
        endpoint, seeded.webhook_secret = webhooks.create_endpoint(
            owner, "https://hooks.example.com/oncecal", runtime().link_keys, utcnow(), allow_private=True
        )
        seeded.endpoint_id = endpoint.id
        sealed = runtime().secrets.seal(f"https://calendar.example.com/{tag}/private.ics")
        connection = Connection(
            owner_id=owner.id,
            kind="ics",
            host="calendar.example.com",
            secret=sealed.token,
            key_id=sealed.key_id,
        )
        connection.calendars = [ConnectedCalendar(name=f"{tag.title()} feed", writable=False)]
        db.session.add(connection)
        db.session.flush()
        db.session.add(
            CalendarSource(calendar_id=calendar.id, source_id=connection.calendars[0].id, checks=True)
        )
        seeded.connection_id = connection.id
        started = owners.start_password_reset(owner.email, runtime().link_keys, utcnow())
        assert started is not None
        seeded.reset_token = started[-1]
        db.session.commit()
    page = BookingPage.parse(client.get(f"/l/{seeded.tokens[0]}").get_data(as_text=True))
    booked = client.post(f"/l/{seeded.tokens[0]}", data=page.form(name=f"{tag.title()} Invitee"))
    assert booked.status_code == 303, booked.status_code
    seeded.booked_link_id = seeded.link_ids[0]
    seeded.booking_ref = booked.headers["Location"].split("/b/", 1)[1].split("?", 1)[0]
    with app.app_context():
        seeded.booking_id = db.session.scalar(sa.select(Booking.id).where(Booking.ref == seeded.booking_ref))
        fan_out_events()  # the deliveries of the booking and the reset, as the worker makes them
        seeded.message_id = db.session.scalar(
            sa.select(sa.func.min(OutboxMessage.id)).where(OutboxMessage.owner_id == seeded.owner_id)
        )
    return seeded


CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The session CSRF token of the first form on a page."""
    found = CSRF_INPUT.search(html)
    if found is None:
        raise AssertionError("no csrf_token on this page")
    return unescape(found.group(1))


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> str:
    """Log in through the real form; return a CSRF token valid for the session."""
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "email": email, "password": password})
    assert response.status_code == 302, response.status_code
    return csrf_of(client.get("/dashboard/profile").get_data(as_text=True))
