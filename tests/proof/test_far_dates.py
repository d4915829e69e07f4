"""Far dates on every page (issue 13, defect 2), on SQLite and on PostgreSQL.

Dates at and past the ends of the calendar (years 1 and 9999, five-digit
years, garbage) in ``?date=`` of every page that shows a week, posted as
slots to every form that books or moves, as expiries through the API and the
CLI, and stored directly in a link that the owner's pages and the API then
show. In the zone furthest east (Pacific/Kiritimati, UTC+14), where the last
instant datetime holds in UTC has no local date.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from oncecal.extensions import db
from oncecal.models import Calendar, OneTimeLink
from tests.proof.hostile import BACKENDS, Seeded, database_url, fresh_app, login, seed_owner
from tests.support.pages import BookingPage

EAST = "Pacific/Kiritimati"
LAST_INSTANT = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
EDGE_DATES = [
    "9999-12-24",
    "9999-12-31",
    "0001-01-01",
    "0001-01-02",
    "99999-01-01",
    "2026-02-30",
    "next-week",
]
EDGE_SLOTS = [
    "9999-12-31T23:00Z",
    "9999-12-31T23:59:59+00:00",
    "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00Z",
    "1970-01-01T00:00:00Z",
]


def far_dates(count: int) -> list[str]:
    """The edge dates, then ``count`` more from the first and last centuries of datetime."""
    rng = random.Random(13)
    picked = [
        f"{rng.choice([rng.randint(1, 99), rng.randint(9900, 9999)]):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        for _ in range(count)
    ]
    return EDGE_DATES + picked


def far_slots(count: int) -> list[str]:
    """The edge slots, then ``count`` more in the last century of datetime, in zones either side of UTC."""
    rng = random.Random(17)
    picked = [
        f"{rng.randint(9900, 9999)}-12-31T{rng.randint(0, 23):02d}:00:00{rng.choice(['Z', '+14:00', '-12:00'])}"
        for _ in range(count)
    ]
    return EDGE_SLOTS + picked


@dataclass
class FarWorld:
    app: Flask
    seeded: Seeded
    far_link_id: int
    pages: dict[str, tuple[str, str]]  # name → (path shown, path its form posts to)


@pytest.fixture(params=BACKENDS)
def far_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FarWorld]:
    url = database_url(request, tmp_path, request.param)
    with fresh_app(url, RATELIMIT_ENABLED=False, TOKEN_FAILURE_LIMIT="1000000 per minute") as app:
        seeded = seed_owner(app, "far")
        with app.app_context():
            db.session.execute(sa.update(Calendar).values(timezone=EAST))
            # Written directly, as an old API (or a restored dump) could have stored it.
            far_link_id = seeded.link_ids[2]
            db.session.execute(
                sa.update(OneTimeLink).where(OneTimeLink.id == far_link_id).values(expires_at=LAST_INSTANT)
            )
            db.session.commit()
        link = f"/l/{seeded.tokens[1]}"
        reschedule = f"/b/{seeded.booking_ref}/reschedule"
        pages = {
            "/l/": (link, link),
            "/c/": (f"/c/{seeded.slug}", f"/c/{seeded.slug}"),
            "/p/": (f"/p/{seeded.calendar_key}", f"/c/{seeded.slug}"),
            "/b/<ref>/reschedule": (reschedule, reschedule),
        }
        yield FarWorld(app, seeded, far_link_id, pages)


def _tally(counter: Counter[str]) -> str:
    return " ".join(f"{k} × {v}" for k, v in sorted(counter.items()))


def test_far_dates_on_every_page(far_world: FarWorld, proof: Any) -> None:
    app, seeded = far_world.app, far_world.seeded
    client: FlaskClient = app.test_client()
    dates = far_dates(proof.scale(8, 120))
    slots = far_slots(proof.scale(6, 60))

    # ?date= the page cannot use: the first week, as without it.
    shown: Counter[str] = Counter()
    for path, _posted in far_world.pages.values():
        for tz in ("", EAST):
            query = {"tz": tz} if tz else {}
            first = BookingPage.parse(client.get(path, query_string=query).get_data(as_text=True)).slots
            for value in dates:
                response = client.get(path, query_string={**query, "date": value})
                same = (
                    response.status_code == 200
                    and BookingPage.parse(response.get_data(as_text=True)).slots == first
                )
                shown[f"{response.status_code}{' with the first week' if same else ' ELSEWHERE'}"] += 1
    n = sum(shown.values())
    proof.record(
        "far dates: ?date= on /l/, /c/, /p/, /b/<ref>/reschedule",
        tried=f"{n} GETs: years 1 and 9999, 5-digit years, impossible days, text; in UTC and UTC+14",
        expected=f"200 with the first week × {n}",
        got=_tally(shown),
    )

    # Posted slots no page offers: 409 with the form again, nothing booked or moved.
    posted: Counter[str] = Counter()
    for path, action in far_world.pages.values():
        for slot in slots:
            page = BookingPage.parse(client.get(path).get_data(as_text=True))
            response = client.post(action, data=page.form(slot=slot))
            again = response.status_code == 409 and bool(
                BookingPage.parse(response.get_data(as_text=True)).slots
            )
            posted[f"{response.status_code}{' with the form' if again else ' WITHOUT the form'}"] += 1
    n = sum(posted.values())
    proof.record(
        "far dates: posted slots on /l/, /c/ (and /p/'s form), /b/<ref>/reschedule",
        tried=f"{n} posts: 9999-12-31T23:00Z and others at the ends of datetime, offsets -12:00 to +14:00",
        expected=f"409 with the form × {n}",
        got=_tally(posted),
    )
    with app.app_context():
        assert db.session.get_one(OneTimeLink, seeded.link_ids[1]).uses == 0

    # Expiries past ten years: refused by the API and the CLI.
    refused: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {seeded.api_key}"}
    for body in (
        {"expires_at": "9999-12-31T23:59:59Z"},
        {"expires_at": "3000-01-01T00:00:00+14:00"},
        {"expires_at": "9999-12-31T23:59:59-05:00"},
        {"expires_in": 10**12},
        {"expires_in": 3654 * 86400},
    ):
        response = client.post(
            "/api/v1/one-time-links", json={"calendar": seeded.slug, **body}, headers=headers
        )
        field = next(iter(body))
        refused[
            f"API {response.status_code}{'' if field in (response.get_json() or {}).get('errors', {}) else ' unnamed'}"
        ] += 1
    runner = app.test_cli_runner()
    for expires_in in ("3654d", "99999999999d", "9" * 30):
        result = runner.invoke(args=["link", "create", seeded.slug, "--expires-in", expires_in])
        refused[f"CLI exit {result.exit_code}"] += 1
    proof.record(
        "far dates: expiry more than 10 years ahead",
        tried="5 API creates (expires_at to 9999-12-31, expires_in to 10^12 s), 3 CLI --expires-in",
        expected="API 422 × 5 CLI exit 2 × 3",
        got=_tally(refused),
    )

    # A stored expiry of 9999-12-31T23:59:59Z, on a calendar in UTC+14.
    owner = app.test_client()
    login(owner, seeded.email)
    answered: Counter[str] = Counter()
    calendar = seeded.calendar_id
    for path in (
        "/dashboard/",
        f"/dashboard/calendars/{calendar}/links",
        f"/dashboard/calendars/{calendar}/links?status=active",
        f"/dashboard/calendars/{calendar}/links.csv",
        f"/dashboard/calendars/{calendar}/bookings",
        f"/dashboard/calendars/{calendar}/share?tab=one-time",
    ):
        answered[str(owner.get(path).status_code)] += 1
    for path in ("/one-time-links", f"/one-time-links/{far_world.far_link_id}", "/bookings", "/calendars"):
        answered[str(client.get(f"/api/v1{path}", headers=headers).status_code)] += 1
    proof.record(
        "far dates: a stored expiry of 9999-12-31T23:59:59Z",
        tried="5 dashboard pages and the CSV, 4 API reads, the calendar in UTC+14",
        expected="200 × 10",
        got=_tally(answered),
    )
