"""Bad input: every form field and every API operation fuzzed, oversized bodies, malformed tokens,
slots and zones and emails that are wrong, markup shown as text in Chromium.

Runs on SQLite and on PostgreSQL (which refuses NUL in text: the app must
refuse it first). Sizes come from proof.scale: hundreds of cases under
``make test``, thousands under ``make proof``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Calendar, OneTimeLink
from oncecal.services import links
from tests.proof.hostile import (
    BACKENDS,
    PASSWORD,
    Seeded,
    csrf_of,
    database_url,
    fresh_app,
    login,
    seed_owner,
)
from tests.support.pages import BookingPage

NASTY = [
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "\ud83d",
    "\u202e\u2066",
    "\ufeff",
    "\r\n\r\n",
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(1)</script>",
    "' OR 1=1 --",
    "%00",
    "9" * 40,
    "-1",
    "1e309",
    "NaN",
    "2026-13-45T25:61:00Z",
    "0000-00-00T00:00:00+99:99",
    "9999-12-31T23:59:59+00:00",
    "../../etc/passwd",
    "Etc/../../../etc/passwd",
    " ",
    "",
]
SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)
CONTROL = st.integers(0, 31).map(chr)
HOSTILE_CHAR = st.one_of(st.characters(), SURROGATE, CONTROL, st.just("\x00"))
HOSTILE = st.one_of(
    st.text(HOSTILE_CHAR, max_size=40),
    st.sampled_from(NASTY),
    st.builds(
        lambda s, n: s * n, st.sampled_from(["a", "<", "\x00", "é", "😀", "\ud800"]), st.integers(100, 3000)
    ),
)


def has_nul(text: str) -> bool:
    return "\x00" in text


def has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def form_body(fields: list[tuple[str, str]]) -> bytes:
    """URL-encode a form as a browser would, lone surrogates sent as their raw (invalid) UTF-8."""
    return "&".join(
        f"{quote(k.encode('utf-8', 'surrogatepass'), safe='')}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
        for k, v in fields
    ).encode()


@dataclass
class FormSpec:
    name: str
    area: str
    path: Callable[[World], str]
    fields: dict[str, str]
    who: str  # "owner", "anon" or "public"
    token: str  # "session" or "form"


@dataclass
class World:
    app: Flask
    first: Seeded
    second_calendar_id: int
    fuzz_token: str
    owner_client: FlaskClient
    anon_client: FlaskClient
    public_client: FlaskClient
    session_csrf: str
    anon_csrf: str
    form_tokens: dict[str, str]


ALL_HOURS = {f"hours_{i}": "09:00-17:00" for i in range(7)}
FORMS = [
    FormSpec(
        "booking form /l/",
        "invitee",
        lambda w: f"/l/{w.fuzz_token}",
        {"slot": "", "name": "Ivy", "email": "ivy@example.com", "notes": "", "timezone": "UTC"},
        "public",
        "form",
    ),
    FormSpec(
        "calendar page /c/",
        "invitee",
        lambda w: f"/c/{w.first.slug}",
        {"slot": "", "name": "Ivy", "email": "ivy@example.com", "notes": "", "timezone": "UTC"},
        "public",
        "form",
    ),
    FormSpec(
        "cancel /b/…/cancel",
        "invitee",
        lambda w: f"/b/{w.first.booking_ref}/cancel",
        {"reason": "busy"},
        "public",
        "form",
    ),
    FormSpec(
        "reschedule /b/…/reschedule",
        "invitee",
        lambda w: f"/b/{w.first.booking_ref}/reschedule",
        {"slot": "", "timezone": "UTC"},
        "public",
        "form",
    ),
    FormSpec(
        "new calendar",
        "dashboard",
        lambda w: "/dashboard/calendars/new",
        {
            "name": "Fuzz call",
            "slug": "",
            "timezone": "UTC",
            "duration_minutes": "30",
            "min_notice_minutes": "0",
            "days_ahead": "60",
            "buffer_minutes": "0",
            "location": "",
            "date_overrides": "",
            "default_link_expiry_days": "",
            "public_page_enabled": "y",
            "allow_cancel": "y",
            "allow_reschedule": "y",
            "change_cutoff_hours": "24",
            "reminder_hours": "24",
            "embed_origins": "",
            **ALL_HOURS,
        },
        "owner",
        "session",
    ),
    FormSpec(
        "edit calendar",
        "dashboard",
        lambda w: f"/dashboard/calendars/{w.second_calendar_id}/edit",
        {
            "name": "Edited call",
            "slug": "",
            "timezone": "Europe/Paris",
            "duration_minutes": "45",
            "min_notice_minutes": "60",
            "days_ahead": "30",
            "buffer_minutes": "5",
            "location": "Room 1",
            "date_overrides": "2030-12-24: off",
            "default_link_expiry_days": "7",
            "change_cutoff_hours": "2",
            "reminder_hours": "",
            "embed_origins": "https://www.example.com",
            **ALL_HOURS,
        },
        "owner",
        "session",
    ),
    FormSpec(
        "profile",
        "dashboard",
        lambda w: "/dashboard/profile",
        {
            "name": "Olga",
            "email": "first@example.com",
            "phone": "+1 555 0100",
            "show_name": "y",
            "show_email": "y",
            "show_phone": "y",
            "expired_message": "Call me.",
        },
        "owner",
        "session",
    ),
    FormSpec(
        "new one-time link",
        "dashboard",
        lambda w: f"/dashboard/calendars/{w.first.calendar_id}/links",
        {
            "label": "Ann",
            "max_uses": "1",
            "expires_in_days": "",
            "prefill_name": "Ann",
            "prefill_email": "ann@example.com",
            "allow_cancel": "",
            "allow_reschedule": "no",
            "change_cutoff_hours": "",
        },
        "owner",
        "session",
    ),
    FormSpec(
        "owner cancels a booking",
        "dashboard",
        lambda w: f"/dashboard/bookings/{w.first.booking_id}/cancel",
        {"message": "Sorry"},
        "owner",
        "session",
    ),
    FormSpec(
        "new API key", "dashboard", lambda w: "/dashboard/api-keys", {"key-name": "CRM"}, "owner", "session"
    ),
    FormSpec(
        "new webhook",
        "dashboard",
        lambda w: "/dashboard/webhooks",
        {"hook-url": "https://8.8.8.8/hook"},
        "owner",
        "session",
    ),
    FormSpec(
        "change password",
        "auth",
        lambda w: "/dashboard/password",
        {"current": "wrong password!", "new": "another long password", "confirm": "another long password"},
        "owner",
        "session",
    ),
    FormSpec(
        "signup",
        "auth",
        lambda w: "/signup",
        {"name": "New Owner", "email": "new@example.com", "password": "a long enough password"},
        "anon",
        "session",
    ),
    FormSpec(
        "login",
        "auth",
        lambda w: "/login",
        {"email": "first@example.com", "password": "wrong"},
        "anon",
        "session",
    ),
    FormSpec(
        "forgot password",
        "auth",
        lambda w: "/password/forgot",
        {"email": "first@example.com"},
        "anon",
        "session",
    ),
    FormSpec(
        "reset password",
        "auth",
        lambda w: f"/password/reset/{w.first.reset_token}",
        {"new": "a long enough password", "confirm": "a long enough password"},
        "anon",
        "session",
    ),
]
QUERY_FIELDS = ["tz", "date", "name", "email", "host", "theme", "embed"]


@pytest.fixture(params=BACKENDS)
def fuzz_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """Two owners' worth of objects, clients logged in, throttles out of the way of the fuzzer."""
    url = database_url(request, tmp_path, request.param)
    with fresh_app(url, RATELIMIT_ENABLED=False, TOKEN_FAILURE_LIMIT="1000000 per minute") as app:
        first = seed_owner(app, "first", owner_name="Olga")
        second = seed_owner(app, "second")
        with app.app_context():
            calendar = db.session.get_one(Calendar, first.calendar_id)
            _link, fuzz_token = links.issue_link(
                calendar, runtime().link_keys, now=datetime.now(UTC), max_uses=1000
            )
        owner_client, anon_client, public_client = app.test_client(), app.test_client(), app.test_client()
        session_csrf = login(owner_client, first.email)
        anon_csrf = csrf_of(anon_client.get("/login").get_data(as_text=True))
        # A calendar of the first owner's own for the edit form to change.
        new = owner_client.post(
            "/dashboard/calendars/new",
            data={"csrf_token": session_csrf, **FORMS[4].fields, "name": "Second call"},
        )
        assert new.status_code == 302, new.status_code
        second_calendar_id = int(re.search(r"/calendars/(\d+)/", new.headers["Location"]).group(1))
        del second
        yield World(
            app,
            first,
            second_calendar_id,
            fuzz_token,
            owner_client,
            anon_client,
            public_client,
            session_csrf,
            anon_csrf,
            {},
        )


def _form_token(world: World, spec: FormSpec, refresh: bool) -> tuple[str, list[str]]:
    """The signed form id of a booking page (a fresh one after a booking used the last), and its slots."""
    key = spec.name
    if refresh or key not in world.form_tokens:
        page_path = spec.path(world).removesuffix("/cancel")
        page = world.public_client.get(page_path)
        html = page.get_data(as_text=True)
        if "/cancel" in spec.path(world) or page.status_code != 200:
            match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
            world.form_tokens[key] = match.group(1) if match else ""
            world.form_tokens[key + " slots"] = ""
        else:
            parsed = BookingPage.parse(html)
            world.form_tokens[key] = parsed.csrf_token
            world.form_tokens[key + " slots"] = "\n".join(parsed.slots[:20])
    return world.form_tokens[key], [s for s in world.form_tokens[key + " slots"].split("\n") if s]


@dataclass
class Tally:
    sent: Counter[str]
    nul: Counter[str]
    surrogate: Counter[str]
    statuses: dict[str, Counter[int]]
    errors: list[str]


def test_every_form_field_fuzzed_gives_no_5xx(fuzz_world: World, proof: Any) -> None:
    world = fuzz_world
    tally = Tally(Counter(), Counter(), Counter(), {}, [])
    examples = proof.scale(300, 3000)
    refresh: set[str] = set()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def post_a_form(data: st.DataObject) -> None:
        spec = data.draw(st.sampled_from(FORMS), label="form")
        client = {"owner": world.owner_client, "anon": world.anon_client, "public": world.public_client}[
            spec.who
        ]
        slots: list[str] = []
        if spec.token == "form":
            token, slots = _form_token(world, spec, spec.name in refresh)
            refresh.discard(spec.name)
        else:
            token = world.session_csrf if spec.who == "owner" else world.anon_csrf
        fields: list[tuple[str, str]] = []
        for name, valid in spec.fields.items():
            if name == "slot" and slots:
                valid = data.draw(st.sampled_from(slots))
            choice = data.draw(
                st.sampled_from(["valid", "hostile", "hostile", "missing", "twice"]), label=name
            )
            if choice == "missing":
                continue
            value = valid if choice == "valid" else data.draw(HOSTILE, label=name)
            fields.append((name, value))
            if choice == "twice":
                fields.append((name, data.draw(HOSTILE)))
        fields.append(
            ("csrf_token", data.draw(st.one_of(st.just(token), st.just(token), HOSTILE), label="csrf"))
        )
        if data.draw(st.booleans(), label="extra field"):
            fields.append((data.draw(HOSTILE), data.draw(HOSTILE)))
        query = ""
        if spec.area == "invitee" and data.draw(st.booleans(), label="query"):
            pairs = [
                (k, data.draw(HOSTILE, label=k)) for k in data.draw(st.sets(st.sampled_from(QUERY_FIELDS)))
            ]
            query = "?" + form_body(pairs).decode()
        everything = "".join(k + v for k, v in fields) + query
        tally.sent[spec.area] += 1
        tally.nul[spec.area] += has_nul(everything)
        tally.surrogate[spec.area] += has_surrogate(everything)
        try:
            response = client.post(
                spec.path(world) + query,
                data=form_body(fields),
                content_type="application/x-www-form-urlencoded",
            )
            status = response.status_code
            response.close()
        except Exception as error:  # the test client re-raises what would have been a 500
            status = 500
            tally.errors.append(f"{spec.name}: {type(error).__name__}: {error} with {fields!r}"[:600])
            with world.app.app_context():
                db.session.rollback()
        if status >= 500 and len(tally.errors) < 5:
            tally.errors.append(f"{spec.name}: {status} with {fields!r}"[:600])
        tally.statuses.setdefault(spec.area, Counter())[status] += 1
        if status in (302, 303) and spec.token == "form":
            refresh.add(spec.name)

    post_a_form()
    for area in ("invitee", "dashboard", "auth"):
        names = ", ".join(s.name for s in FORMS if s.area == area)
        statuses = tally.statuses.get(area, Counter())
        fives = sum(n for code, n in statuses.items() if code >= 500)
        proof.record(
            f"fuzzed {area} forms ({names})",
            tried=f"{tally.sent[area]} posts, hostile values in every field "
            f"({tally.nul[area]} with NUL, {tally.surrogate[area]} with lone surrogates)",
            expected="0 × 5xx",
            got=f"{fives} × 5xx (" + " ".join(f"{code}×{n}" for code, n in sorted(statuses.items())) + ")",
            ok=fives == 0 and tally.sent[area] > 0,
        )
    assert not tally.errors, "\n".join(tally.errors)


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Flask, Seeded]]:
    """One owner with everything, guessing allowed without limit (the abuse proofs test the limit)."""
    url = database_url(request, tmp_path, request.param)
    with fresh_app(url, TOKEN_FAILURE_LIMIT="1000000 per minute") as app:
        yield app, seed_owner(app, "first")


def test_oversized_bodies_answer_413(world: tuple[Flask, Seeded], proof: Any) -> None:
    app, seeded = world
    public, owner = app.test_client(), app.test_client()
    csrf = login(owner, seeded.email)
    limit = app.config["MAX_CONTENT_LENGTH"]
    targets = [
        (public, f"/l/{seeded.tokens[1]}"),
        (public, f"/c/{seeded.slug}"),
        (public, f"/b/{seeded.booking_ref}/cancel"),
        (public, f"/b/{seeded.booking_ref}/reschedule"),
        (app.test_client(), "/login"),
        (app.test_client(), "/signup"),
        (owner, "/dashboard/profile"),
        (owner, "/dashboard/calendars/new"),
        (owner, f"/dashboard/calendars/{seeded.calendar_id}/links"),
    ]
    for size in (limit + 1, 10 * 1024 * 1024):
        statuses: Counter[int] = Counter()
        for client, path in targets:
            body = form_body([("csrf_token", csrf), ("name", "x" * size)])
            response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
            statuses[response.status_code] += 1
            assert "too much data" in response.get_data(as_text=True)
        api = public.post(
            "/api/v1/one-time-links",
            data=b'{"calendar": "' + b"x" * size + b'"}',
            headers={"Authorization": f"Bearer {seeded.api_key}", "Content-Type": "application/json"},
        )
        statuses[api.status_code] += 1
        assert api.mimetype == "application/problem+json"
        proof.record(
            f"oversized body ({size:,} bytes, limit {limit:,})",
            tried=f"{len(targets)} form posts (booking, cancel, reschedule, login, signup, dashboard) + API create",
            expected=f"413 × {len(targets) + 1}",
            got=" ".join(f"{code} × {n}" for code, n in sorted(statuses.items())),
        )
    with app.app_context():
        assert db.session.get_one(OneTimeLink, seeded.link_ids[1]).uses == 0


MALFORMED_TOKENS = [
    "A" * 43,
    "A" * 42,
    "A" * 44,
    "A" * 2000,
    "a",
    "%00",
    "A" * 42 + "%00",
    "%ED%A0%80" * 3,
    "A" * 42 + "=",
    "A" * 42 + ".",
    "..%2F..%2Fetc%2Fpasswd",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "%F0%9F%98%80" * 11,
    "' OR '1'='1",
    "null",
    "0",
]


def test_malformed_tokens_get_exactly_the_unknown_token_404(world: tuple[Flask, Seeded], proof: Any) -> None:
    app, seeded = world
    client = app.test_client()
    reference = client.get("/l/" + "Q" * 43)
    assert reference.status_code == 404
    real = seeded.tokens[1]
    variants = [
        *MALFORMED_TOKENS,
        real[:-1],
        real + "A",
        real[:-1] + ("B" if real[-1] != "B" else "C"),
        real.upper() if real.upper() != real else real.lower(),
        real[1:] + real[0],
        real[:20] + "%00" + real[21:],
    ]
    drawn: list[str] = []

    @settings(max_examples=proof.scale(100, 1000), deadline=None, database=None, derandomize=True)
    @given(st.text(HOSTILE_CHAR, min_size=1, max_size=80))
    def random_tokens(text: str) -> None:
        drawn.append(quote(text.encode("utf-8", "surrogatepass"), safe=""))

    random_tokens()
    different: list[str] = []
    for token in [*variants, *drawn]:
        for method in ("GET", "POST"):
            # "/l//x" is first redirected (308) to "/l/x" by the router: follow it to the answer.
            response = client.open(f"/l/{token}", method=method, follow_redirects=True)
            if response.status_code != 404 or response.data != reference.data:
                different.append(f"{method} {token[:60]!r}: {response.status_code}")
    total = 2 * (len(variants) + len(drawn))
    proof.record(
        "malformed tokens vs an unknown one",
        tried=f"{total} GET/POST of /l/<token>: {len(variants)} crafted (wrong length, NUL, surrogates, "
        f"near misses of a real token) + {len(drawn)} random",
        expected="all 404 with the unknown token's body",
        got="all 404 with the unknown token's body"
        if not different
        else f"{len(different)} differ: {different[:5]}",
    )
    assert client.get(f"/l/{real}").status_code == 200


def _next_monday_9(now: datetime) -> datetime:
    day = (now + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    while day.weekday() != 0:
        day += timedelta(days=1)
    return day


def _z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_wrong_slots_zones_and_emails_answer_400_or_409_with_a_message(
    world: tuple[Flask, Seeded], proof: Any
) -> None:
    app, seeded = world
    client = app.test_client()
    with app.app_context():
        owner_calendar = db.session.get_one(Calendar, seeded.calendar_id)
        monday_only = Calendar(
            owner_id=owner_calendar.owner_id,
            name="Mondays",
            slug="mondays",
            timezone="UTC",
            weekly_hours={"0": [["09:00", "10:00"]]},
            min_notice_minutes=0,
            days_ahead=30,
        )
        db.session.add(monday_only)
        db.session.commit()
        link, token = links.issue_link(monday_only, runtime().link_keys, now=datetime.now(UTC))
        link_id = link.id
    page = BookingPage.parse(client.get(f"/l/{token}").get_data(as_text=True))
    monday = _next_monday_9(datetime.now(UTC))
    assert _z(monday) in page.slots
    taken_message = "no longer available"
    groups = {
        "slot in the past": (409, taken_message, [_z(monday - timedelta(days=7 * n)) for n in (1, 2, 52)]),
        "slot outside the weekly hours": (
            409,
            taken_message,
            [
                _z(monday + timedelta(hours=3)),
                _z(monday - timedelta(days=1)),
                _z(monday + timedelta(hours=15)),
            ],
        ),
        "slot off the grid": (
            409,
            taken_message,
            [
                _z(monday + timedelta(minutes=7)),
                _z(monday + timedelta(seconds=1)),
                (monday + timedelta(minutes=30, microseconds=1)).isoformat(),
            ],
        ),
        "slot past the days ahead": (
            409,
            taken_message,
            [_z(monday + timedelta(days=7 * n)) for n in (5, 52, 400)],
        ),
        "malformed slot": (
            400,
            "That time is not valid",
            [
                "tomorrow",
                "2026-02-30T09:00:00Z",
                "2026-12-01T09:00:00",
                "9999-99-99",
                "1" * 40,
                "2026-12-01T09:00:00Z\x00",
            ],
        ),
    }
    cases: list[tuple[str, int, str, dict[str, str]]] = []
    for group, (status, message, slots) in groups.items():
        cases += [(group, status, message, page.form(slot=slot)) for slot in slots]
    for zone_name in [
        "Mars/Olympus",
        "",
        "Etc/../../etc/passwd",
        "UTC\x00",
        "utc",
        "Europe/Paris/",
        "+05:00",
        "EST5EDT,M3",
    ]:
        cases.append(("invalid time zone", 400, "Choose a valid time zone", page.form(timezone=zone_name)))
    for email in [
        "no-at",
        "a@b",
        "a@@b.com",
        "<a@b.com>",
        "a b@c.com",
        "a@b.com\x00",
        "@example.com",
        "a@.com",
        "x" * 250 + "@e.com",
    ]:
        cases.append(("invalid email", 400, "valid email", page.form(email=email)))
    results: dict[str, Counter[str]] = {}
    for group, _status, message, form in cases:
        response = client.post(
            f"/l/{token}",
            data=form_body(list(form.items())),
            content_type="application/x-www-form-urlencoded",
        )
        html = response.get_data(as_text=True)
        results.setdefault(group, Counter())[
            f"{response.status_code}{' with the message' if message in html else ' WITHOUT the message'}"
        ] += 1
    for group, (status, _message) in {
        **{g: (s, m) for g, (s, m, _) in groups.items()},
        "invalid time zone": (400, "Choose a valid time zone"),
        "invalid email": (400, "valid email"),
    }.items():
        n = sum(results[group].values())
        proof.record(
            f"booking form: {group}",
            tried=f"{n} posts to /l/<token>",
            expected=f"{status} with the message × {n}",
            got=" ".join(f"{k} × {v}" for k, v in sorted(results[group].items())),
        )
    with app.app_context():
        assert db.session.get_one(OneTimeLink, link_id).uses == 0
    booked = client.post(f"/l/{token}", data=page.form(slot=_z(monday)))
    assert booked.status_code == 303


# -- markup shows as text, in a real browser ---------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium, as in tests/browser."""
    from tests.support.live import CHROMIUM, CHROMIUM_ARGS

    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


def _markup(tag: str) -> str:
    """A payload that would add an element with data-xss and raise a dialog if unescaped."""
    return (
        f"{tag}<img src=x onerror=alert('{tag}') data-xss></script><script data-xss>alert('{tag}')</script>"
    )


def _short_markup(tag: str) -> str:
    return f'{tag}"><svg data-xss onload=alert(1)>'  # fits a phone number's 40 characters


@pytest.mark.browser
@pytest.mark.parametrize("backend", BACKENDS)
def test_markup_in_every_field_is_shown_as_text_in_chromium(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, browser: Any, proof: Any
) -> None:
    from oncecal.services import owners
    from tests.conftest import ALL_DAY
    from tests.support.live import live_server

    url = database_url(request, tmp_path, backend)
    with fresh_app(url):
        pass
    fields = {
        "owner name": _markup("ON"),
        "owner phone": _short_markup("OP"),
        "owner's expired-link message": _markup("OM"),
        "calendar name": _markup("CN"),
        "calendar location": "https://x.example/" + _markup("CL"),
        "link label": _markup("LL"),
        "link prefill name": _markup("LP"),
        "invitee name": _markup("IN"),
        "invitee notes": _markup("NO"),
        "invitee's cancel reason": _markup("CR"),
    }
    with live_server(url) as server:
        app = server.app
        with app.app_context():
            owner = owners.create_owner(
                "xss@example.com", fields["owner name"], PASSWORD, phone=fields["owner phone"]
            )
            owner.expired_message = fields["owner's expired-link message"]
            calendar = Calendar(
                owner=owner,
                name=fields["calendar name"],
                location=fields["calendar location"],
                slug="markup",
                timezone="UTC",
                weekly_hours=ALL_DAY,
                min_notice_minutes=0,
                change_cutoff_hours=0,
            )
            db.session.add(calendar)
            db.session.commit()
            keys = runtime().link_keys
            _l, shown_token = links.issue_link(
                calendar,
                keys,
                now=datetime.now(UTC),
                label=fields["link label"],
                prefill_name=fields["link prefill name"],
            )
            _l, booked_token = links.issue_link(calendar, keys, now=datetime.now(UTC))
            _l, cancelled_token = links.issue_link(calendar, keys, now=datetime.now(UTC))
            calendar_id = calendar.id
        client = app.test_client()
        refs = []
        for token, slot_index in ((booked_token, 0), (cancelled_token, 1)):
            page = BookingPage.parse(client.get(f"/l/{token}").get_data(as_text=True))
            booked = client.post(
                f"/l/{token}",
                data=page.form(
                    slot=page.slots[slot_index], name=fields["invitee name"], notes=fields["invitee notes"]
                ),
            )
            assert booked.status_code == 303, booked.status_code
            refs.append(booked.headers["Location"].split("/b/", 1)[1].split("?", 1)[0])
        cancel_form = csrf_of(client.get(f"/b/{refs[1]}").get_data(as_text=True))
        cancelled = client.post(
            f"/b/{refs[1]}/cancel",
            data={"csrf_token": cancel_form, "reason": fields["invitee's cancel reason"]},
        )
        assert cancelled.status_code == 303, cancelled.status_code

        context = browser.new_context(bypass_csp=True)  # so an injected handler would run
        dialogs: list[str] = []
        tab = context.new_page()
        tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        pages = [f"/l/{shown_token}", f"/l/{booked_token}", f"/b/{refs[0]}", f"/b/{refs[1]}", "/c/markup"]
        texts: list[str] = []
        injected: Counter[str] = Counter()
        for path in pages:
            tab.goto(server.url + path)
            injected[path] = tab.evaluate("document.querySelectorAll('[data-xss]').length")
            texts.append(tab.evaluate(_VISIBLE_TEXT))
        tab.goto(server.url + "/login")
        tab.fill("input[name=email]", "xss@example.com")
        tab.fill("input[name=password]", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url("**/dashboard/**")
        dashboard = [
            "/dashboard/",
            f"/dashboard/calendars/{calendar_id}/links",
            f"/dashboard/calendars/{calendar_id}/bookings",
            f"/dashboard/calendars/{calendar_id}/share",
            f"/dashboard/calendars/{calendar_id}/edit",
            "/dashboard/profile",
        ]
        for path in dashboard:
            tab.goto(server.url + path)
            injected[path] = tab.evaluate("document.querySelectorAll('[data-xss]').length")
            texts.append(tab.evaluate(_VISIBLE_TEXT))
        context.close()
    everything = "\n".join(texts)
    # The invitee's cancel reason reaches the owner by email only: no page shows it.
    on_pages = {name: value for name, value in fields.items() if name != "invitee's cancel reason"}
    literal = [name for name, value in on_pages.items() if value in everything]
    elements = sum(injected.values())
    proof.record(
        "markup in every shown field, rendered by Chromium",
        tried=f'{len(fields)} fields ({", ".join(fields)}) with <img onerror>, </script><script>, "><svg onload>; '
        f"{len(pages) + len(dashboard)} invitee and dashboard pages, CSP bypassed",
        expected=f"0 injected elements, 0 dialogs, {len(on_pages)}/{len(on_pages)} shown fields literal",
        got=f"{elements} injected elements, {len(dialogs)} dialogs, {len(literal)}/{len(on_pages)} shown fields literal",
    )
    missing = sorted(set(on_pages) - set(literal))
    assert not missing, f"not shown literally anywhere: {missing}"


# The page's text as a reader sees it, plus what its form fields hold.
_VISIBLE_TEXT = (
    "document.body.innerText + '\\n' + "
    "[...document.querySelectorAll('input, textarea')].map(e => e.value).join('\\n')"
)
