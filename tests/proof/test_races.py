"""Concurrent submits against real gunicorn workers (PRODUCT.md rules 4, 5 and 8).

Each test migrates a fresh database (a temp SQLite file, or a PostgreSQL
database of its own), starts gunicorn with four workers on it, loads every
form first and then releases all the POSTs at once through a barrier.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink, Owner, utcnow
from oncecal.runtime import runtime
from oncecal.services import links
from oncecal.services.links import LinkStatus
from tests.conftest import ALL_DAY, TEST_SECRET, create_pg_database, drop_pg_database, make_test_app
from tests.pages import BookingPage
from tests.servers import Server, migrate, running_server, server_env

pytestmark = pytest.mark.slow

HTTP_TIMEOUT = 30


@dataclass
class Site:
    server: Server
    app: Flask  # same database and secret as the server, for seeding and checking
    calendar_id: int

    def issue_links(self, count: int) -> list[tuple[int, str]]:
        """Issue ``count`` single-use links on the calendar; return (id, token) pairs."""
        with self.app.app_context():
            calendar = db.session.get_one(Calendar, self.calendar_id)
            issued = [links.issue_link(calendar, runtime().link_keys, now=utcnow()) for _ in range(count)]
            return [(link.id, token) for link, token in issued]

    def load_form(self, token: str) -> BookingPage:
        response = requests.get(f"{self.server.url}/l/{token}", timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, f"GET /l/<token> answered {response.status_code}"
        return BookingPage.parse(response.text)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a temp SQLite file or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'races.sqlite3'}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    url = create_pg_database(admin_url)
    try:
        yield url
    finally:
        drop_pg_database(admin_url, url)


@pytest.fixture
def site(database_url: str, tmp_path: Path) -> Iterator[Site]:
    """Gunicorn with 4 workers on the migrated database, and one calendar open around the clock."""
    env = server_env(database_url, TEST_SECRET)
    migrate(env)
    app = make_test_app(database_url)
    with app.app_context():
        owner = Owner(email="owner@example.com", name="Olivia Owner", password_hash="not-a-real-hash")
        calendar = Calendar(
            owner=owner, name="Consultation", slug="consultation", weekly_hours=ALL_DAY, min_notice_minutes=0
        )
        db.session.add(calendar)
        db.session.commit()
        calendar_id = calendar.id
    try:
        with running_server(env, tmp_path) as server:
            yield Site(server, app, calendar_id)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def later_slots(page: BookingPage, margin: timedelta = timedelta(hours=1)) -> list[str]:
    """Return the page's slots that cannot slip into the past during the test."""
    cutoff = utcnow() + margin
    return [slot for slot in page.slots if datetime.fromisoformat(slot) >= cutoff]


def release_at_once(posts: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run every POST in its own thread, all released by one barrier."""
    barrier = threading.Barrier(len(posts))

    def run(post: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait(timeout=HTTP_TIMEOUT)
        return post()

    with ThreadPoolExecutor(max_workers=len(posts)) as pool:
        return list(pool.map(run, posts))


def poster(url: str, form: dict[str, str]) -> Callable[[], requests.Response]:
    return lambda: requests.post(url, data=form, allow_redirects=False, timeout=HTTP_TIMEOUT)


def server_errors(responses: list[requests.Response], site: Site) -> str:
    """Describe 5xx answers and the server log, for an assertion message."""
    bodies = [f"{r.status_code}: {r.text[:300]}" for r in responses if r.status_code >= 500][:3]
    return "\n".join([*bodies, "--- server log ---", site.server.log()])


def test_one_link_submitted_thirty_times_books_once(site: Site) -> None:
    """Rule 4: N submits of one single-use link, each from its own page load: one booking, N-1 410."""
    n = 30
    [(link_id, token)] = site.issue_links(1)
    pages = [site.load_form(token) for _ in range(n)]
    assert len({page.csrf_token for page in pages}) == n, "each page load must carry its own form id"
    slots = later_slots(pages[0])
    assert len(slots) >= n, f"only {len(slots)} slots offered"
    url = f"{site.server.url}/l/{token}"
    # A different slot per submit: only the link can make them lose.
    responses = release_at_once(
        [poster(url, page.form(slot)) for page, slot in zip(pages, slots[:n], strict=True)]
    )

    codes = Counter(r.status_code for r in responses)
    assert not any(code >= 500 for code in codes), f"status codes: {codes}\n{server_errors(responses, site)}"
    assert codes == Counter({303: 1, 410: n - 1}), f"status codes: {codes}"
    [winner] = [r for r in responses if r.status_code == 303]
    with site.app.app_context():
        booked = db.session.scalars(sa.select(Booking)).all()
        assert len(booked) == 1, f"{len(booked)} bookings; status codes: {codes}"
        assert winner.headers["Location"].endswith(f"/b/{booked[0].ref}")
        assert booked[0].link_id == link_id
        link = db.session.get_one(OneTimeLink, link_id)
        assert link.uses == 1
        assert links.status_of(link, utcnow()) is LinkStatus.USED


def test_ten_links_racing_for_one_slot_book_it_once(site: Site) -> None:
    """Rule 5: ten links of one calendar submit the same slot: one booking, nine 409, nine links unused."""
    n = 10
    issued = site.issue_links(n)
    pages = [site.load_form(token) for _link_id, token in issued]
    slot = later_slots(pages[0])[0]
    responses = release_at_once(
        [
            poster(f"{site.server.url}/l/{token}", page.form(slot))
            for (_id, token), page in zip(issued, pages, strict=True)
        ]
    )

    codes = Counter(r.status_code for r in responses)
    assert not any(code >= 500 for code in codes), f"status codes: {codes}\n{server_errors(responses, site)}"
    assert codes == Counter({303: 1, 409: n - 1}), f"status codes: {codes}"
    winner_id = next(
        link_id for (link_id, _), r in zip(issued, responses, strict=True) if r.status_code == 303
    )
    with site.app.app_context():
        booked = db.session.scalars(sa.select(Booking)).all()
        assert len(booked) == 1, f"{len(booked)} bookings; status codes: {codes}"
        assert booked[0].link_id == winner_id
        assert booked[0].start_at == datetime.fromisoformat(slot)
        now = utcnow()
        for link in db.session.scalars(sa.select(OneTimeLink).order_by(OneTimeLink.id)):
            if link.id == winner_id:
                assert (link.uses, links.status_of(link, now)) == (1, LinkStatus.USED)
            else:
                assert (link.uses, links.status_of(link, now)) == (0, LinkStatus.ACTIVE), f"link {link.id}"
