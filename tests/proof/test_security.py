"""Security: a database dump holds no usable secret, CSRF is refused on every form, no route
serves another owner's data, every response carries the security headers, cookies are
flagged, and production refuses to start without a secret. SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from oncecal.extensions import db
from oncecal.models import ApiKey, Booking, Calendar, CalendarSource, Connection, OneTimeLink, WebhookEndpoint
from oncecal.services.tokens import hash_token
from tests.proof.hostile import BACKENDS, Seeded, csrf_of, database_url, fresh_app, login, seed_owner
from tests.support.pages import BookingPage
from tests.support.servers import PROJECT_ROOT


@pytest.fixture(params=BACKENDS)
def two_owners(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Flask, Seeded, Seeded]]:
    """Two owners with everything; the first's calendar may only be embedded on one site."""
    url = database_url(request, tmp_path, request.param)
    with fresh_app(url, TOKEN_FAILURE_LIMIT="1000000 per minute", RATELIMIT_ENABLED=False) as app:
        first = seed_owner(app, "first", embed_origins=["https://www.example.com"])
        second = seed_owner(app, "second")
        yield app, first, second


# -- a dump is not enough -------------------------------------------------------


def _dump(app: Flask) -> str:
    """The whole database as its own dump tool writes it."""
    url = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(url.database) as conn:
            return "\n".join(conn.iterdump())
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    result = subprocess.run(
        ["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres",
         "--data-only", url.database],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout


def test_a_database_dump_holds_no_usable_token_or_key(
    two_owners: tuple[Flask, Seeded, Seeded], proof: Any
) -> None:
    app, first, second = two_owners
    client = app.test_client()
    # Issued through the API too, as an integration would.
    api_link = client.post(
        "/api/v1/one-time-links",
        json={"calendar": first.slug, "external_id": "crm-1", "metadata": {"deal": "D-1"}},
        headers={"Authorization": f"Bearer {first.api_key}"},
    )
    assert api_link.status_code == 201
    api_token = api_link.get_json()["url"].rsplit("/l/", 1)[1]
    tokens = [*first.tokens, *second.tokens, api_token]
    secrets_found = {
        "link tokens": tokens,
        "API keys": [first.api_key, second.api_key],
        "webhook secrets": [first.webhook_secret, second.webhook_secret],
        "password reset tokens": [first.reset_token, second.reset_token],
    }
    dump = _dump(app)
    # The dump is the real one: it holds each link's lookup hash.
    assert all(hash_token(t) in dump for t in tokens)
    found = []
    for kind, values in secrets_found.items():
        for value in values:
            bare = value.removeprefix("whsec_").removeprefix("oc_")
            forms = {value, bare}
            if kind != "API keys":  # the HMAC digest itself, as hex or standard base64
                digest = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
                forms |= {digest.hex(), base64.b64encode(digest).decode().rstrip("=")}
            found += [f"{kind}: {form[:12]}…" for form in forms if form in dump]
    counts = ", ".join(f"{len(v)} {k}" for k, v in secrets_found.items())
    proof.record(
        "database dump holds no token or key",
        tried=f"{'pg_dump' if 'PostgreSQL' in dump or 'COPY' in dump else 'sqlite3 .dump'} of every table "
        f"({len(dump):,} bytes); searched for {counts}",
        expected="0 found",
        got=f"{len(found)} found" + (f": {found[:4]}" if found else ""),
    )

    # An attacker with the dump but not the secret: the nonce, key id and hash of each link.
    with app.app_context():
        rows = db.session.execute(
            sa.select(OneTimeLink.nonce, OneTimeLink.key_id, OneTimeLink.token_hash)
        ).all()
    guesses = ["", "dev", "secret", "changeme", "development", "oncecal", "test-secret-key", "SECRET_KEY"]
    candidates: list[str] = []
    for nonce, key_id, _token_hash in rows:
        raw = bytes.fromhex(nonce)
        candidates += [
            nonce,
            base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
            base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode(),
            base64.urlsafe_b64encode(hmac.new(key_id.encode(), raw, hashlib.sha256).digest())
            .rstrip(b"=")
            .decode(),
        ]
        for guess in guesses:
            key = hmac.new(guess.encode(), b"oncecal/link-key/v1", hashlib.sha256).digest()
            candidates.append(
                base64.urlsafe_b64encode(hmac.new(key, raw, hashlib.sha256).digest()).rstrip(b"=").decode()
            )
    stored = {row.token_hash for row in rows}
    matched = sum(hash_token(c) in stored for c in candidates)
    opened = Counter(client.get(f"/l/{c}").status_code for c in candidates)
    proof.record(
        "rebuild tokens from a dump without the secret",
        tried=f"{len(candidates)} candidates from {len(rows)} links' nonce and key id "
        f"(the nonce itself, its hashes, HMAC with the key id and {len(guesses)} guessed secrets)",
        expected="0 match a stored hash, 404 for all",
        got=f"{matched} match a stored hash, " + " ".join(f"{code} for {n}" for code, n in opened.items()),
        ok=matched == 0 and set(opened) == {404},
    )
    # The same derivation with the real secret does open a link: the attempt above was a fair one.
    from oncecal.services.tokens import LinkKeys

    nonce, key_id, _ = rows[1]
    rebuilt = LinkKeys(app.config["SECRET_KEY"]).token_for(nonce, key_id)
    assert rebuilt is not None and client.get(f"/l/{rebuilt}").status_code in (200, 410)


# -- CSRF ----------------------------------------------------------------------------


def _object_args(seeded: Seeded) -> dict[str, Any]:
    return {
        "calendar_id": seeded.calendar_id,
        "link_id": seeded.link_ids[1],
        "booking_id": seeded.booking_id,
        "key_id": seeded.api_key_id,
        "endpoint_id": seeded.endpoint_id,
        "message_id": seeded.message_id,
        "connection_id": seeded.connection_id,
        "token": seeded.reset_token,
    }


def _path(rule: Any, values: dict[str, Any]) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = re.sub(rf"<(?:[a-z]+:)?{name}>", str(values[name]), path)
    return path


def test_every_session_form_refuses_missing_or_wrong_csrf(
    two_owners: tuple[Flask, Seeded, Seeded], proof: Any
) -> None:
    app, first, _second = two_owners
    rules = [
        r
        for r in app.url_map.iter_rules()
        if "POST" in r.methods and r.endpoint.split(".")[0] not in ("booking", "api")
    ]
    rules.sort(key=lambda r: r.endpoint == "auth.logout")  # logging out last
    owner = app.test_client()
    right = login(owner, first.email)
    other_session = app.test_client()
    other_token = csrf_of(other_session.get("/login").get_data(as_text=True))
    refused: Counter[str] = Counter()
    wrong: list[str] = []
    for rule in rules:
        path = _path(rule, _object_args(first))
        for label, token in (("missing", None), ("forged", "x" * 40), ("another session's", other_token)):
            data = {"name": "CSRF test"} if token is None else {"name": "CSRF test", "csrf_token": token}
            response = owner.post(path, data=data)
            if response.status_code == 400 and "CSRF" in response.get_data(as_text=True):
                refused[label] += 1
            else:
                wrong.append(f"{label} {rule.endpoint}: {response.status_code}")
    with app.app_context():
        untouched = (
            db.session.get(Calendar, first.calendar_id) is not None
            and db.session.get_one(ApiKey, first.api_key_id).revoked_at is None
            and db.session.get_one(OneTimeLink, first.link_ids[1]).revoked_at is None
            and db.session.get_one(Booking, first.booking_id).cancelled_at is None
        )
    # With the right token the same posts get past the check (a control: the test can fail).
    passed = 0
    for rule in rules:
        response = owner.post(_path(rule, _object_args(first)), data={"csrf_token": right})
        passed += "CSRF" not in response.get_data(as_text=True)
    proof.record(
        "CSRF on every dashboard and account form",
        tried=f"{len(rules)} POST routes from app.url_map ({', '.join(sorted(r.endpoint for r in rules))}) "
        "× missing, forged and another session's token",
        expected=f"400 × {3 * len(rules)}, nothing changed; right token passes the check on {len(rules)}",
        got=f"400 × {sum(refused.values())}"
        + (f", not refused: {wrong[:4]}" if wrong else "")
        + (", nothing changed" if untouched else ", SOMETHING CHANGED")
        + f"; right token passes the check on {passed}",
        ok=not wrong and sum(refused.values()) == 3 * len(rules) and passed == len(rules) and untouched,
    )


def test_booking_forms_refuse_a_missing_or_wrong_form_id(
    two_owners: tuple[Flask, Seeded, Seeded], proof: Any
) -> None:
    app, first, second = two_owners
    client = app.test_client()
    token = first.tokens[1]
    page = BookingPage.parse(client.get(f"/l/{token}").get_data(as_text=True))
    other_page = BookingPage.parse(client.get(f"/l/{second.tokens[1]}").get_data(as_text=True))
    cancel_page = client.get(f"/b/{first.booking_ref}").get_data(as_text=True)
    session_token = csrf_of(app.test_client().get("/login").get_data(as_text=True))
    wrong_ids = {
        "missing": None,
        "forged": "eyJmIjoiQUFBQSIsInMiOiJsOjEifQ.AAAAAA.forgedsignatureforgedsignature",
        "another link's": other_page.csrf_token,
        "a session CSRF token": session_token,
    }
    targets = {
        f"/l/{token}": page.form(),
        f"/c/{first.slug}": page.form(),
        f"/b/{first.booking_ref}/cancel": {"reason": "no"},
        f"/b/{first.booking_ref}/reschedule": {"slot": page.slots[1], "timezone": "UTC"},
    }
    with app.app_context():
        before = db.session.scalar(sa.select(sa.func.count()).select_from(Booking))
    statuses: Counter[int] = Counter()
    for path, form in targets.items():
        for form_id in wrong_ids.values():
            data = {k: v for k, v in form.items() if k != "csrf_token"}
            if form_id is not None:
                data["csrf_token"] = form_id
            response = client.post(path, data=data)
            statuses[response.status_code] += 1
            assert "This form has expired" in response.get_data(as_text=True), (path, response.status_code)
    with app.app_context():
        after = db.session.scalar(sa.select(sa.func.count()).select_from(Booking))
        booking = db.session.scalar(sa.select(Booking).where(Booking.ref == first.booking_ref))
        link_uses = db.session.get_one(OneTimeLink, first.link_ids[1]).uses
    proof.record(
        "booking forms without their signed form id",
        tried=f"{len(targets)} forms (/l/, /c/, cancel, reschedule) × {', '.join(wrong_ids)}",
        expected=f"400 × {len(targets) * len(wrong_ids)}; nothing booked, cancelled or moved",
        got=" ".join(f"{code} × {n}" for code, n in statuses.items())
        + ("; nothing booked, cancelled or moved" if (after == before and booking.cancelled_at is None
           and booking.sequence == 0 and link_uses == 0) else "; SOMETHING CHANGED"),
    )  # fmt: skip
    assert 'name="csrf_token"' in cancel_page


# -- another owner's data --------------------------------------------------------


def _markers(seeded: Seeded) -> list[str]:
    return [
        seeded.email,
        seeded.slug,
        f"{seeded.name} call",
        f"{seeded.name} Invitee",
        "first link",
        "first key",
        f"{seeded.name} feed",
    ]


def test_no_route_serves_another_owners_data(two_owners: tuple[Flask, Seeded, Seeded], proof: Any) -> None:
    app, first, second = two_owners
    intruder = app.test_client()
    token = login(intruder, second.email)
    walked: Counter[str] = Counter()
    leaks: list[str] = []
    public: list[str] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        blueprint = rule.endpoint.split(".")[0]
        if blueprint == "api":
            continue  # walked with the API key below
        if (
            rule.arguments - set(_object_args(first))
            or blueprint == "booking"
            or rule.endpoint == "auth.reset_password"
        ):
            public.append(rule.rule)  # capability URLs: the token, ref, slug or key is the permission
            continue
        if rule.endpoint == "favicon.favicon":
            public.append(rule.rule)  # the same icon for everyone, and no text to leak in
            continue
        for method in sorted(rule.methods & {"GET", "POST"}):
            if rule.endpoint == "auth.logout":
                continue
            path = _path(rule, _object_args(first))
            response = intruder.open(
                path, method=method, data={"csrf_token": token} if method == "POST" else None
            )
            body = response.get_data(as_text=True)
            response.close()
            shown = [m for m in _markers(first) if m in body]
            if rule.arguments:
                fine = response.status_code in (403, 404)
            else:
                fine = response.status_code < 500 and not shown
            walked[f"{response.status_code}"] += 1
            if not fine:
                leaks.append(f"{method} {path}: {response.status_code} {shown}")
    api = app.test_client()
    headers = {"Authorization": f"Bearer {second.api_key}"}
    api_calls = [
        ("GET", f"/api/v1/one-time-links/{first.link_ids[1]}", True),
        ("DELETE", f"/api/v1/one-time-links/{first.link_ids[1]}", True),
        ("GET", f"/api/v1/one-time-links?calendar={first.slug}", True),
        ("GET", f"/api/v1/one-time-links?calendar={first.calendar_id}", True),
        ("GET", f"/api/v1/bookings?calendar={first.slug}", True),
        ("GET", f"/api/v1/bookings?calendar={first.calendar_id}", True),
        ("POST", "/api/v1/one-time-links", True),
        ("GET", "/api/v1/one-time-links", False),
        ("GET", "/api/v1/bookings", False),
        ("GET", "/api/v1/calendars", False),
    ]
    api_statuses: Counter[int] = Counter()
    for method, path, names_first in api_calls:
        body = {"calendar": first.slug} if method == "POST" else None
        response = api.open(path, method=method, json=body, headers=headers)
        api_statuses[response.status_code] += 1
        text = response.get_data(as_text=True)
        shown = [m for m in _markers(first) if m in text and not (names_first and m == first.slug)]
        if (names_first and response.status_code != 404) or shown or response.status_code >= 500:
            leaks.append(f"API {method} {path}: {response.status_code} {shown}")
    covered = {r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("api.")} - {
        "/api/v1/openapi.json"
    }
    assert covered == {
        p.split("?")[0].replace(str(first.link_ids[1]), "<int:link_id>") for _m, p, _n in api_calls
    }
    with app.app_context():
        intact = (
            db.session.get_one(OneTimeLink, first.link_ids[1]).revoked_at is None
            and db.session.get_one(ApiKey, first.api_key_id).revoked_at is None
            and db.session.get_one(WebhookEndpoint, first.endpoint_id).disabled_at is None
            and db.session.get_one(Booking, first.booking_id).cancelled_at is None
            and db.session.get(Calendar, first.calendar_id) is not None
            and db.session.get(Connection, first.connection_id) is not None
            and db.session.scalar(
                sa.select(CalendarSource.checks).where(CalendarSource.calendar_id == first.calendar_id)
            )
        )
    proof.record(
        "second owner walks every route with the first owner's ids",
        tried=f"{sum(walked.values())} dashboard/account requests (every GET/POST rule of app.url_map) + "
        f"{len(api_calls)} API calls with the second owner's key; public capability routes not walked: "
        f"{', '.join(public)}",
        expected="404/403 for the first owner's objects, no first-owner data anywhere, all intact",
        got=("no leaks" if not leaks else f"{len(leaks)} leaks: {leaks[:4]}")
        + f" (dashboard {' '.join(f'{k}×{v}' for k, v in sorted(walked.items()))}; "
        f"API {' '.join(f'{k}×{v}' for k, v in sorted(api_statuses.items()))})"
        + ("" if intact else "; FIRST OWNER'S OBJECTS CHANGED"),
        ok=not leaks and intact,
    )


# -- headers and cookies --------------------------------------------------------


def _policy(response: Any) -> dict[str, str]:
    directives = [
        d.strip() for d in response.headers.get("Content-Security-Policy", "").split(";") if d.strip()
    ]
    return {d.split()[0]: " ".join(d.split()[1:]) for d in directives}


def _every_get(app: Flask, first: Seeded, second: Seeded) -> list[tuple[str, str]]:
    """(path, kind) of every GET rule, with real ids, plus error answers."""
    values = {
        **_object_args(first),
        "token": first.tokens[1],
        "ref": first.booking_ref,
        "slug": first.slug,
        "key": first.calendar_key,
        "filename": "css/app.css",
    }
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        kind = rule.endpoint.split(".")[0]
        # The .ics is a download (Content-Disposition: attachment), never shown in a frame.
        paths.append((_path(rule, values), "booking-open" if rule.rule.endswith(".ics") else kind))
        if kind == "booking":  # the same pages of a calendar that does not restrict embedding
            paths.append((_path(rule, {**values, "token": second.tokens[1], "ref": second.booking_ref,
                                       "slug": second.slug, "key": second.calendar_key}), "booking-open"))  # fmt: skip
    # A page of no calendar (an unknown token) may be framed like an open calendar's.
    paths += [(f"/l/{'Z' * 43}", "booking-open"), ("/nope", "error"), (f"/l/{first.tokens[0]}", "booking")]
    return paths


def _check_headers(response: Any, kind: str, production: bool) -> list[str]:
    problems = []
    headers = response.headers
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("nosniff")
    if headers.get("Referrer-Policy") not in (
        "same-origin",
        "no-referrer",
        "strict-origin-when-cross-origin",
    ):
        problems.append("Referrer-Policy")
    if kind != "demo":
        policy = _policy(response)
        if policy.get("script-src") != "'self'" or "unsafe-inline" in headers.get(
            "Content-Security-Policy", ""
        ):
            problems.append(f"script-src {policy.get('script-src')!r}")
        ancestors = policy.get("frame-ancestors")
        if (
            (kind == "booking" and ancestors != "'self' https://www.example.com")
            or (kind == "booking-open" and ancestors is not None)
            or (kind not in ("booking", "booking-open") and ancestors != "'none'")
        ):
            problems.append(f"frame-ancestors {ancestors!r}")
    if production and not headers.get("Strict-Transport-Security", "").startswith("max-age="):
        problems.append("HSTS")
    return problems


def test_every_response_carries_the_security_headers(
    two_owners: tuple[Flask, Seeded, Seeded], proof: Any
) -> None:
    app, first, second = two_owners
    client = app.test_client()
    login(client, first.email)
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    paths = _every_get(app, first, second)
    for path, kind in paths:
        response = client.get(path)
        statuses[response.status_code] += 1
        problems += [f"{path}: {p}" for p in _check_headers(response, kind, production=False)]
        response.close()
    posted = client.post(f"/l/{first.tokens[1]}", data={"slot": "bad"})
    problems += [f"POST /l/: {p}" for p in _check_headers(posted, "booking", production=False)]
    proof.record(
        "security headers on every GET route and error",
        tried=f"{len(paths) + 1} responses ({' '.join(f'{k}×{v}' for k, v in sorted(statuses.items()))}): "
        "nosniff, Referrer-Policy, CSP script-src 'self', frame-ancestors per calendar / 'none'",
        expected="all present",
        got="all present" if not problems else f"{len(problems)} missing: {problems[:4]}",
    )


def test_production_headers_cookies_and_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, proof: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'production.sqlite3'}"
    monkeypatch.setenv("ONCECAL_ENV", "production")
    with fresh_app(url, SECRET_KEY="a-real-production-secret-of-enough-length", TESTING=False) as app:
        first = seed_owner(app, "first", embed_origins=["https://www.example.com"])
        second = seed_owner(app, "second")
        client = app.test_client()
        token = csrf_of(client.get("/login").get_data(as_text=True))
        logged_in = client.post(
            "/login",
            data={"csrf_token": token, "email": first.email, "password": "correct horse battery staple"},
        )
        cookies = logged_in.headers.getlist("Set-Cookie")
        problems = []
        for path, kind in _every_get(app, first, second):
            if kind == "demo":
                continue
            response = client.get(path, base_url="https://localhost")
            problems += [f"{path}: {p}" for p in _check_headers(response, kind, production=True)]
            response.close()
    session_cookie = next(c for c in cookies if c.startswith("session="))
    flags = [flag for flag in ("Secure", "HttpOnly", "SameSite=Lax") if flag in session_cookie]
    proof.record(
        "production: HSTS and headers on every GET route",
        tried="ONCECAL_ENV=production, every GET rule (demo pages are not registered)",
        expected="all present",
        got="all present" if not problems else f"{len(problems)} missing: {problems[:4]}",
        ok=not problems and "demo" not in app.blueprints,
    )
    proof.record(
        "production: session cookie flags",
        tried="log in; read Set-Cookie",
        expected="Secure HttpOnly SameSite=Lax",
        got=" ".join(flags),
    )
    monkeypatch.delenv("ONCECAL_ENV")
    with fresh_app(f"sqlite:///{tmp_path / 'dev.sqlite3'}") as dev:
        dev_client = dev.test_client()
        seed_owner(dev, "third")
        token = csrf_of(dev_client.get("/login").get_data(as_text=True))
        dev_cookie = next(
            c
            for c in dev_client.post(
                "/login",
                data={
                    "csrf_token": token,
                    "email": "third@example.com",
                    "password": "correct horse battery staple",
                },
            ).headers.getlist("Set-Cookie")
            if c.startswith("session=")
        )
    proof.record(
        "development: session cookie flags",
        tried="log in over http; read Set-Cookie",
        expected="HttpOnly SameSite=Lax",
        got=" ".join(flag for flag in ("Secure", "HttpOnly", "SameSite=Lax") if flag in dev_cookie),
    )


@pytest.mark.parametrize("secret", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_production_refuses_to_start_without_a_secret(secret: str | None, tmp_path: Path, proof: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONCECAL_")}
    env.update(ONCECAL_ENV="production", ONCECAL_DATABASE_URL=f"sqlite:///{tmp_path / 'p.sqlite3'}")
    if secret is not None:
        env["ONCECAL_SECRET_KEY"] = secret
    result = subprocess.run(
        [sys.executable, "-c", "from app import create_app; create_app()"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    refused = result.returncode != 0 and "ONCECAL_SECRET_KEY must be set" in result.stderr
    proof.record(
        f"production start with the secret {'unset' if secret is None else repr(secret)}",
        tried="ONCECAL_ENV=production python -c 'create_app()'",
        expected="refuses: ONCECAL_SECRET_KEY must be set",
        got="refuses: ONCECAL_SECRET_KEY must be set"
        if refused
        else f"exit {result.returncode}: {result.stderr[-200:]}",
    )
    assert not (tmp_path / "p.sqlite3").exists() or refused
    with pytest.raises(RuntimeError):
        os.environ["ONCECAL_ENV"] = "production"
        try:
            create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'q.sqlite3'}", "SECRET_KEY": secret})
        finally:
            del os.environ["ONCECAL_ENV"]
