"""Fixtures: an app on a fresh database per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink, Owner, utcnow
from oncecal.services import fanout, links
from tests.support.apps import create_pg_database, drop_pg_database, libpq_url, make_test_app

pytest_plugins = ["tests.support.radicale", "tests.support.httpstub"]

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ALL_DAY = {str(d): [["00:00", "24:00"]] for d in range(7)}


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """Return a PostgreSQL URL tests may create databases from, or skip.

    With ONCECAL_TEST_DATABASE_URL set (as .ci/run does), an unreachable
    server fails the run; without it, the local default is tried and the
    PostgreSQL runs are skipped with the reason when it is not there.
    """
    configured = os.environ.get("ONCECAL_TEST_DATABASE_URL")
    url = configured or DEFAULT_PG_URL
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=3):
            pass
    except psycopg.OperationalError as error:
        if configured:
            pytest.fail(f"ONCECAL_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {error}")
        pytest.skip(f"PostgreSQL not reachable at {url} and ONCECAL_TEST_DATABASE_URL unset: {error}")
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A database of this test session's own, dropped at its end."""
    url = create_pg_database(postgres_admin_url)
    yield url
    drop_pg_database(postgres_admin_url, url)


def _fresh_schema(app: Flask) -> None:
    with app.app_context():
        db.drop_all()
        db.create_all()


def fan_out_events() -> int:
    """Turn every recorded event into its deliveries, as the worker's first step does; return how many.

    Call inside an app context. The deliveries a change makes exist once this ran.
    """
    count = 0
    while fanout.fan_out_next(utcnow()) is not None:
        count += 1
    return count


def detached_booking(app: Flask, ref: str) -> Booking:
    """Load the booking with ``ref`` in its own app context and detach it, to read after the context ends."""
    with app.app_context():
        booking = db.session.scalar(sa.select(Booking).where(Booking.ref == ref))
        assert booking is not None
        db.session.expunge(booking)
        return booking


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'oncecal.sqlite3'}"


@pytest.fixture
def app(sqlite_url: str) -> Iterator[Flask]:
    """The app on a fresh SQLite database."""
    app = make_test_app(sqlite_url)
    _fresh_schema(app)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Flask]:
    """The app on a fresh database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'oncecal.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    app = make_test_app(url)
    _fresh_schema(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    """Run the test inside the app's context."""
    with app.app_context():
        yield


MakeOwner = Callable[..., Owner]
MakeCalendar = Callable[..., Calendar]
MakeLink = Callable[..., tuple[OneTimeLink, str]]
MakeBooking = Callable[..., Booking]


@pytest.fixture
def make_owner() -> MakeOwner:
    """Return a function that adds an owner (inside an app context)."""

    def make(**fields: Any) -> Owner:
        owner = Owner(
            email=fields.pop("email", f"owner-{secrets.token_hex(3)}@example.com"),
            name=fields.pop("name", "Olivia Owner"),
            password_hash=fields.pop("password_hash", "not-a-real-hash"),
            **fields,
        )
        db.session.add(owner)
        db.session.commit()
        return owner

    return make


@pytest.fixture
def make_calendar(make_owner: MakeOwner) -> MakeCalendar:
    """Return a function that adds a calendar open around the clock by default."""

    def make(owner: Owner | None = None, **fields: Any) -> Calendar:
        calendar = Calendar(
            owner=owner or make_owner(),
            name=fields.pop("name", "Consultation"),
            slug=fields.pop("slug", f"cal-{secrets.token_hex(3)}"),
            timezone=fields.pop("timezone", "UTC"),
            weekly_hours=fields.pop("weekly_hours", ALL_DAY),
            min_notice_minutes=fields.pop("min_notice_minutes", 0),
            **fields,
        )
        db.session.add(calendar)
        db.session.commit()
        return calendar

    return make


@pytest.fixture
def make_link(make_calendar: MakeCalendar) -> MakeLink:
    """Return a function that issues a link and returns it with its token."""

    def make(calendar: Calendar | None = None, **fields: Any) -> tuple[OneTimeLink, str]:
        return links.issue_link(
            calendar or make_calendar(), runtime().link_keys, now=fields.pop("now", utcnow()), **fields
        )

    return make


@pytest.fixture
def make_booking() -> MakeBooking:
    """Return a function that writes a booking directly (inside an app context): for times no page offers, like the past."""

    def make(calendar_id: int, start: datetime, **fields: Any) -> Booking:
        end = start + timedelta(minutes=fields.pop("minutes", 30))
        booking = Booking(
            calendar_id=calendar_id,
            start_at=start,
            end_at=end,
            blocked_until=end,
            invitee_name=fields.pop("invitee_name", "Ivy Invitee"),
            invitee_email=fields.pop("invitee_email", "ivy@example.com"),
            invitee_timezone=fields.pop("invitee_timezone", "UTC"),
            **fields,
        )
        db.session.add(booking)
        db.session.commit()
        return booking

    return make
