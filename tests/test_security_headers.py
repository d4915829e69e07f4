"""Security headers on every kind of response, and the production guard rails."""

from __future__ import annotations

import pytest

from app import create_app
from oncecal.extensions import db


def policy_of(response) -> dict[str, str]:
    directives = [d.strip() for d in response.headers["Content-Security-Policy"].split(";") if d.strip()]
    return {d.split()[0]: " ".join(d.split()[1:]) for d in directives}


@pytest.mark.usefixtures("ctx")
@pytest.mark.parametrize(
    "path", ["/healthz", "/login", "/dashboard/", "/l/" + "A" * 43, "/c/nope", "/widget/embed.js"]
)
def test_every_response_has_the_base_headers(client, path):
    response = client.get(path)
    response.close()
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    policy = policy_of(response)
    assert (
        policy["script-src"] == "'self'"
        and "unsafe-inline" not in response.headers["Content-Security-Policy"]
    )


@pytest.mark.usefixtures("ctx")
def test_booking_pages_may_be_framed_unless_the_calendar_restricts_it(client, make_calendar, make_link):
    open_calendar = make_calendar()
    _, token = make_link(open_calendar)
    assert "frame-ancestors" not in policy_of(client.get(f"/l/{token}"))
    closed = make_calendar(embed_origins=["https://www.example.com"])
    _, closed_token = make_link(closed)
    response = client.get(f"/l/{closed_token}")
    assert policy_of(response)["frame-ancestors"] == "'self' https://www.example.com"
    assert client.get(f"/l/{closed_token}?host=https://evil.example").status_code == 403
    assert client.get(f"/l/{closed_token}?host=https://www.example.com").status_code == 200


@pytest.mark.usefixtures("ctx")
def test_owner_pages_are_never_framed(client):
    response = client.get("/login")
    assert policy_of(response)["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_production_refuses_to_start_without_a_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("ONCECAL_ENV", "production")
    monkeypatch.delenv("ONCECAL_SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="ONCECAL_SECRET_KEY"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}"})


def test_production_sets_hsts_and_secure_cookies(monkeypatch, tmp_path):
    monkeypatch.setenv("ONCECAL_ENV", "production")
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}", "SECRET_KEY": "a-real-production-secret"}
    )
    with app.app_context():
        db.create_all()
    response = app.test_client().get("/healthz")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert "demo" not in app.blueprints
