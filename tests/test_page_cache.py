"""The booking page is rendered once per calendar state and filled in per link (blueprints/booking/pagecache.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

import pytest
import sqlalchemy as sa

from blueprints.booking import pagecache
from oncecal.extensions import db
from oncecal.models import Booking, utcnow
from oncecal.services import changes
from tests.support.pages import BookingPage

pytestmark = pytest.mark.usefixtures("ctx")


def renders(app) -> int:
    with app.test_request_context():
        return pagecache.pages().renders


def test_links_of_one_calendar_share_one_render_but_each_page_is_its_own(
    app, client, make_calendar, make_link
):
    calendar = make_calendar()
    _plain, plain_token = make_link(calendar)
    _filled, filled_token = make_link(calendar, prefill_name='Ana "<b>"', prefill_email="ana@example.com")
    before = renders(app)
    plain = client.get(f"/l/{plain_token}").get_data(as_text=True)
    filled = client.get(f"/l/{filled_token}").get_data(as_text=True)
    again = client.get(f"/l/{plain_token}").get_data(as_text=True)
    assert renders(app) == before + 1

    for page, token, other in ((plain, plain_token, filled_token), (filled, filled_token, plain_token)):
        assert other not in page
        assert f'action="/l/{token}"' in page
        nav = re.findall(r'href="(/l/[^"?]+)\?', page)
        assert nav and all(href == f"/l/{token}" for href in nav), nav
        assert pagecache.TOKEN.rsplit("-", 1)[1] not in page  # no marker left
    assert 'value="Ana &#34;&lt;b&gt;&#34;"' in filled and 'value="ana@example.com"' in filled
    assert "Ana" not in plain and "ana@example.com" not in plain
    tokens = {BookingPage.parse(page).csrf_token for page in (plain, filled, again)}
    assert len(tokens) == 3, "every page load carries its own form id"


def test_a_form_from_a_kept_page_books(app, client, make_link):
    _link, token = make_link()
    client.get(f"/l/{token}")  # keeps the page
    page = BookingPage.parse(client.get(f"/l/{token}").get_data(as_text=True))
    response = client.post(f"/l/{token}", data=page.form())
    assert response.status_code == 303 and "/b/" in response.headers["Location"]


def test_a_booking_takes_its_slot_off_every_other_links_page(client, make_calendar, make_link):
    calendar = make_calendar()
    (_a, first), (_b, second) = make_link(calendar), make_link(calendar)
    shown = BookingPage.parse(client.get(f"/l/{second}").get_data(as_text=True))
    booked = shown.slots[0]
    page = BookingPage.parse(client.get(f"/l/{first}").get_data(as_text=True))
    assert client.post(f"/l/{first}", data=page.form(booked)).status_code == 303
    after = BookingPage.parse(client.get(f"/l/{second}").get_data(as_text=True))
    assert booked not in after.slots and after.slots


def test_an_edit_of_the_calendar_or_owner_shows_at_once(client, make_calendar, make_link):
    calendar = make_calendar(name="Intro call")
    _link, token = make_link(calendar)
    assert "Intro call" in client.get(f"/l/{token}").get_data(as_text=True)
    calendar.name = "Deep dive"
    calendar.owner.name = "Renamed Owner"
    db.session.commit()
    html = client.get(f"/l/{token}").get_data(as_text=True)
    assert "Deep dive" in html and "Intro call" not in html and "Renamed Owner" in html


def test_the_clock_follows_each_readers_language(client, make_calendar, make_link):
    calendar = make_calendar(weekly_hours={str(d): [["13:00", "14:00"]] for d in range(7)})
    _link, token = make_link(calendar)
    us = unescape(client.get(f"/l/{token}", headers={"Accept-Language": "en-US"}).get_data(as_text=True))
    de = unescape(client.get(f"/l/{token}", headers={"Accept-Language": "de-DE"}).get_data(as_text=True))
    assert "1:00 PM" in us and "1:00 PM" not in de
    assert "13:00" in de


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 3, 1, 9, 0, tzinfo=UTC), datetime(2026, 3, 1, 9, 0, tzinfo=UTC)),
        (datetime(2026, 3, 1, 9, 0, 0, 1, tzinfo=UTC), datetime(2026, 3, 1, 9, 1, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC), datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_a_kept_page_is_computed_as_of_the_end_of_its_minute(now: datetime, expected: datetime) -> None:
    assert pagecache.next_minute(now) == expected


def test_the_cache_keeps_only_its_size() -> None:
    cache = pagecache.PageCache(size=2)
    for key in "abc":
        cache.get_or_render(key, lambda key=key: key.upper())
    assert cache.get_or_render("a", lambda: "fresh") == "fresh"  # "a" was dropped
    assert cache.get_or_render("c", lambda: "stale?") == "C"
    assert cache.renders == 4


def test_every_change_to_the_bookings_raises_the_calendars_revision_and_shows_at_once(
    client, make_calendar, make_link
):
    calendar = make_calendar()
    (_a, first), (_b, other) = make_link(calendar), make_link(calendar)
    page = BookingPage.parse(client.get(f"/l/{first}").get_data(as_text=True))
    slot = page.slots[0]
    ref = client.post(f"/l/{first}", data=page.form(slot)).headers["Location"].rsplit("/", 1)[1]
    db.session.refresh(calendar)
    assert calendar.bookings_revision == 1
    assert slot not in BookingPage.parse(client.get(f"/l/{other}").get_data(as_text=True)).slots

    booking = db.session.scalar(sa.select(Booking).where(Booking.ref == ref))
    changes.cancel_booking(booking.id, utcnow(), by="owner")
    db.session.refresh(calendar)
    assert calendar.bookings_revision == 2
    assert slot in BookingPage.parse(client.get(f"/l/{other}").get_data(as_text=True)).slots


def test_a_visitors_own_query_text_never_reaches_another_links_kept_page(client, make_calendar, make_link):
    calendar = make_calendar()
    (_a, first), (_b, second) = make_link(calendar), make_link(calendar)
    assert client.get(f'/l/{first}?date="planted-text"').status_code == 200
    page = client.get(f"/l/{second}").get_data(as_text=True)
    assert "planted-text" not in page
    assert f'action="/l/{second}"' in page
