"""Every place an email address is entered judges it the same way, in development and production.

Reserved test domains (RFC 2606, RFC 6761: .test, .example, .invalid, .localhost)
are what development and tests use, the demo's own login among them; in production no mail
reaches them, so every entry refuses them with the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from oncecal.email_addresses import InvalidEmail, check_email_address
from oncecal.extensions import db
from oncecal.models import Owner, utcnow
from oncecal.services import apikeys, owners
from tests.conftest import MakeCalendar
from tests.support.apps import make_test_app
from tests.support.pages import BookingPage
from tests.test_dashboard import PASSWORD, form_post, log_in

RESERVED = "maya@studio.test"
REAL = "maya@studio.co"
REASON = "studio.test is reserved for tests and receives no email"


@pytest.fixture(params=["development", "production"])
def env_app(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    make_calendar: MakeCalendar,
) -> Iterator[Flask]:
    """The app as ONCECAL_ENV makes it, on a fresh SQLite database with one owner and calendar."""
    monkeypatch.setenv("ONCECAL_ENV", request.param)
    app = make_test_app(f"sqlite:///{tmp_path / 'oncecal.sqlite3'}", SECRET_KEY="a-real-production-secret")
    with app.app_context():
        db.create_all()
        make_calendar(owners.create_owner("olga@studio.co", "Olga Owner", PASSWORD), slug="intro")
    yield app
    with app.app_context():
        db.engine.dispose()


def _browser(app: Flask) -> FlaskClient:
    """A client on https with a same-origin Referer, as production's secure cookies and CSRF expect."""
    client = app.test_client()
    client.environ_base.update({"wsgi.url_scheme": "https", "HTTP_REFERER": "https://localhost/"})
    return client


def _signup(app: Flask, email: str) -> tuple[bool, str]:
    response = form_post(_browser(app), "/signup", {"name": "Maya", "email": email, "password": PASSWORD})
    return response.status_code == 302, response.get_data(as_text=True)


def _profile(app: Flask, email: str) -> tuple[bool, str]:
    client = _browser(app)
    with app.app_context():
        current = db.session.scalar(sa.select(Owner.email))
    assert log_in(client, current).status_code == 302
    response = form_post(client, "/dashboard/profile", {"name": "Olga Owner", "email": email})
    return response.status_code == 302, response.get_data(as_text=True)


def _link_prefill(app: Flask, email: str) -> tuple[bool, str]:
    client = _browser(app)
    assert log_in(client, "olga@studio.co").status_code == 302
    with app.app_context():
        calendar_id = db.session.scalar(sa.text("select id from calendars"))
    path = f"/dashboard/calendars/{calendar_id}/links"
    response = form_post(client, path, {"max_uses": "1", "prefill_email": email})
    return response.status_code == 302, response.get_data(as_text=True)


def _booking(app: Flask, email: str) -> tuple[bool, str]:
    client = _browser(app)
    page = BookingPage.parse(client.get("/c/intro").get_data(as_text=True))
    response = client.post("/c/intro", data=page.form(name="Maya", email=email))
    return response.status_code == 303, response.get_data(as_text=True)


def _api_prefill(app: Flask, email: str) -> tuple[bool, str]:
    with app.app_context():
        _, key = apikeys.create_api_key(db.session.scalar(sa.select(Owner)), "test", utcnow())
    response = _browser(app).post(
        "/api/v1/one-time-links",
        json={"calendar": "intro", "prefill": {"email": email}},
        headers={"Authorization": f"Bearer {key}"},
    )
    return response.status_code == 201, str((response.get_json().get("errors") or {}).get("prefill.email"))


def _cli_owner_create(app: Flask, email: str) -> tuple[bool, str]:
    result = app.test_cli_runner().invoke(
        args=["owner", "create", "--email", email, "--name", "Maya", "--password", PASSWORD]
    )
    return result.exit_code == 0, result.output


ENTRIES: dict[str, Callable[[Flask, str], tuple[bool, str]]] = {
    "sign-up": _signup,
    "profile": _profile,
    "link prefill": _link_prefill,
    "booking form": _booking,
    "API prefill.email": _api_prefill,
    "CLI owner create": _cli_owner_create,
}


@pytest.mark.parametrize("entry", ENTRIES)
def test_reserved_test_domain_is_taken_in_development_and_refused_with_a_reason_in_production(
    env_app: Flask, entry: str
):
    accepted, answer = ENTRIES[entry](env_app, RESERVED)
    if env_app.config["ENV_NAME"] == "development":
        assert accepted, answer[-600:]
    else:
        assert not accepted
        assert REASON in answer


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_real_address_is_taken_and_a_malformed_one_refused_everywhere(env_app: Flask, entry: str):
    assert ENTRIES[entry](env_app, REAL)[0]
    accepted, answer = ENTRIES[entry](env_app, "maya@studio")
    assert not accepted and REASON not in answer


@pytest.mark.parametrize("address", ["demo@oncecal.test", "a@x.example", "a@x.invalid", "a@mail.localhost"])
def test_reserved_domains_are_judged_by_the_mode(address: str):
    check_email_address(address, reserved_allowed=True)
    with pytest.raises(InvalidEmail) as refused:
        check_email_address(address, reserved_allowed=False)
    assert refused.value.reserved_domain


@pytest.mark.parametrize(
    "address",
    [
        "nope",
        "a@b",
        "a@host.local",
        "a@x.onion",
        "a b@studio.co",
        "a@@studio.co",
        "kim@example",
        "a@localhost",
    ],
)
def test_malformed_and_special_use_addresses_are_refused_in_either_mode(address: str):
    # .local and .onion are special-use names too, but not test domains: no mode takes them.
    for reserved_allowed in (True, False):
        with pytest.raises(InvalidEmail) as refused:
            check_email_address(address, reserved_allowed=reserved_allowed)
        assert refused.value.reserved_domain is None


def test_documentation_domains_are_registered_and_taken_in_either_mode():
    for reserved_allowed in (True, False):
        check_email_address("ivy@example.com", reserved_allowed=reserved_allowed)
