"""Far and odd dates on every page that takes or shows one (issue 13, defect 2).

A ``date`` a page cannot use is ignored (200 with the first week), a posted
slot the page does not offer is a 409 with the form again, an expiry more
than ten years ahead is refused, and a stored date at the edge of the
calendar never breaks a page that shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from oncecal.extensions import db
from oncecal.models import Booking, OneTimeLink, utcnow
from oncecal.services import apikeys, owners
from tests.apispec import assert_problem, seed_account
from tests.conftest import MakeCalendar, MakeLink
from tests.support.pages import BookingPage
from tests.test_api import Api

PASSWORD = "correct horse battery"

pytestmark = pytest.mark.usefixtures("ctx")

UNUSABLE_DATES = [
    "9999-12-24",
    "9999-12-31",
    "0001-01-01",
    "2000-01-01",
    "2999-01-01",
    "99999-01-01",
    "2026-02-30",
    "next-tuesday",
]
UNOFFERED_SLOTS = [
    "9999-12-31T23:00Z",
    "0001-01-01T00:00:00+14:00",
    "1970-01-01T00:00:00Z",
    "2999-06-01T09:00:00Z",
]


@dataclass(frozen=True)
class Page:
    shown: str  # the page's path
    posted: str  # where its form posts (/p/ posts to /c/)


# The zones at both ends of the clock: a far instant's local date is a day past it.
@pytest.fixture(params=["UTC", "Pacific/Kiritimati"])
def zone_name(request) -> str:
    return request.param


@pytest.fixture(params=["link", "calendar", "permanent", "reschedule"])
def page(
    request, client: FlaskClient, make_calendar: MakeCalendar, make_link: MakeLink, zone_name: str
) -> Page:
    """One of the four pages that show a week of times, in ``zone_name``."""
    calendar = make_calendar(timezone=zone_name)
    if request.param == "link":
        path = f"/l/{make_link(calendar)[1]}"
        return Page(path, path)
    if request.param == "calendar":
        return Page(f"/c/{calendar.slug}", f"/c/{calendar.slug}")
    if request.param == "permanent":
        return Page(f"/p/{calendar.key}", f"/c/{calendar.slug}")
    # Three days ahead: outside the default 24 hours in which changes are closed.
    day = (utcnow() + timedelta(days=3)).date().isoformat()
    shown = BookingPage.parse(client.get(f"/c/{calendar.slug}?date={day}").get_data(as_text=True))
    booked = client.post(f"/c/{calendar.slug}", data=shown.form())
    assert booked.status_code == 303, booked.status_code
    path = booked.headers["Location"].split("?")[0] + "/reschedule"
    return Page(path, path)


def first_week(client: FlaskClient, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return BookingPage.parse(response.get_data(as_text=True)).slots


@pytest.mark.parametrize("value", UNUSABLE_DATES)
def test_a_date_the_page_cannot_use_shows_the_first_week(client, page, value):
    expected = first_week(client, page.shown)
    response = client.get(page.shown, query_string={"date": value})
    assert response.status_code == 200, response.status_code
    assert BookingPage.parse(response.get_data(as_text=True)).slots == expected


@pytest.mark.parametrize("slot", UNOFFERED_SLOTS)
def test_a_posted_slot_the_page_does_not_offer_is_409_with_the_form(client, page, slot):
    shown = BookingPage.parse(client.get(page.shown).get_data(as_text=True))
    response = client.post(page.posted, data=shown.form(slot=slot))
    assert response.status_code == 409, response.status_code
    again = BookingPage.parse(response.get_data(as_text=True))
    assert again.slots and slot not in again.slots
    far_off = sa.or_(
        Booking.start_at > datetime(2900, 1, 1, tzinfo=UTC),
        Booking.start_at < datetime(2000, 1, 1, tzinfo=UTC),
    )
    assert db.session.scalar(sa.select(sa.func.count(Booking.id)).where(far_off)) == 0


# --- expiries ----------------------------------------------------------------------------

TEN_YEARS = timedelta(days=3653)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def api(app, client):
    return Api(client, seed_account(app).key)


@pytest.mark.parametrize("expires_at", ["9999-12-31T23:59:59Z", "3000-01-01T00:00:00+14:00"])
def test_an_expiry_more_than_ten_years_ahead_is_422(app, api, expires_at):
    response = api.post("/one-time-links", json={"calendar": "olga-call", "expires_at": expires_at})
    problem = assert_problem(response, 422)
    assert "10 years" in problem["errors"]["expires_at"], problem
    assert db.session.scalar(sa.select(sa.func.count(OneTimeLink.id))) == 0


def test_an_expiry_up_to_ten_years_ahead_is_kept(api):
    expires_at = iso(utcnow() + TEN_YEARS - timedelta(minutes=5))
    assert api.create(calendar="olga-call", expires_at=expires_at)["expires_at"] == expires_at
    assert api.create(calendar="olga-call", expires_in=int(TEN_YEARS.total_seconds()))["expires_at"]


def test_expires_in_past_ten_years_is_422(api):
    seconds = int(TEN_YEARS.total_seconds()) + 1
    response = api.post("/one-time-links", json={"calendar": "olga-call", "expires_in": seconds})
    assert "10 years" in assert_problem(response, 422)["errors"]["expires_in"]


def test_the_openapi_document_states_the_bound(client):
    properties = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["LinkCreate"][
        "properties"
    ]
    assert properties["expires_in"]["maximum"] == int(TEN_YEARS.total_seconds())
    assert "10 years" in properties["expires_at"]["description"]


@pytest.mark.parametrize("expires_in", ["3654d", "99999999999d", "999999999999999999999"])
def test_the_cli_refuses_an_expiry_past_ten_years(runner, make_calendar, expires_in):
    calendar = make_calendar()
    result = runner.invoke(args=["link", "create", calendar.slug, "--expires-in", expires_in])
    assert result.exit_code == 2, result.output
    assert "10 years" in result.output
    assert db.session.scalar(sa.select(sa.func.count(OneTimeLink.id))) == 0


# --- stored dates at the edge ------------------------------------------------------------

LAST_INSTANT = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.fixture
def far_link(app, make_link: MakeLink, make_owner, make_calendar: MakeCalendar) -> OneTimeLink:
    """A booked link whose stored expiry is the last second datetime holds, written directly.

    Its calendar is in the zone furthest east, where the dashboard shows its
    times and where that second is already in the year 10000.
    """
    owner = owners.create_owner("far@example.com", "Far Owner", PASSWORD)
    calendar = make_calendar(owner, timezone="Pacific/Kiritimati")
    link, token = make_link(calendar, max_uses=2)
    client = app.test_client()
    shown = BookingPage.parse(client.get(f"/l/{token}").get_data(as_text=True))
    assert client.post(f"/l/{token}", data=shown.form()).status_code == 303
    db.session.execute(
        sa.update(OneTimeLink).where(OneTimeLink.id == link.id).values(expires_at=LAST_INSTANT)
    )
    db.session.commit()
    return link


def test_pages_that_show_a_stored_far_expiry_answer(app, far_link):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    client.post("/login", data={"csrf_token": csrf, "email": "far@example.com", "password": PASSWORD})
    calendar_id = far_link.calendar_id
    for path in (
        "/dashboard/",
        f"/dashboard/calendars/{calendar_id}/links",
        f"/dashboard/calendars/{calendar_id}/links?status=active",
        f"/dashboard/calendars/{calendar_id}/links.csv",
        f"/dashboard/calendars/{calendar_id}/bookings",
        f"/dashboard/calendars/{calendar_id}/share",
    ):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    csv_text = client.get(f"/dashboard/calendars/{calendar_id}/links.csv").get_data(as_text=True)
    assert "9999-12-31" in csv_text


def test_the_api_answers_with_a_stored_far_expiry(app, far_link):
    _key, raw = apikeys.create_api_key(far_link.calendar.owner, "far", utcnow())
    api = Api(app.test_client(), raw)
    for path in ("/one-time-links", f"/one-time-links/{far_link.id}", "/bookings", "/calendars"):
        response = api.get(path)
        assert response.status_code == 200, (path, response.get_json())
    assert api.get(f"/one-time-links/{far_link.id}").get_json()["expires_at"] == "9999-12-31T23:59:59Z"
