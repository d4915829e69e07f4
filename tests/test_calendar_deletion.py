"""Deleting a calendar (PRODUCT.md *Dashboard*): asked first, upcoming bookings cancelled as an owner
cancel does, a calendar with history archived (out of every list and page, slug free, links revoked,
past bookings kept), one with nothing removed. Through the test client, on both databases."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink, OutboxMessage, utcnow
from oncecal.services import apikeys, links, owners, webhooks
from tests.conftest import ALL_DAY, MakeBooking, detached_booking, fan_out_events
from tests.support.pages import BookingPage
from tests.threads import together

PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return unescape(match.group(1))


def day(days_ahead: int) -> str:
    return (utcnow() + timedelta(days=days_ahead)).date().isoformat()


@dataclass
class Site:
    app: Flask
    owner: FlaskClient  # logged in to the dashboard
    invitee: FlaskClient
    api_key: str
    calendar_id: int
    slug: str
    key: str
    tokens: list[str]

    def api(self, method: str, path: str, **kw):
        return self.invitee.open(
            f"/api/v1{path}", method=method, headers={"Authorization": f"Bearer {self.api_key}"}, **kw
        )

    def book(self, token: str, days_ahead: int, name: str, email: str) -> str:
        page = BookingPage.parse(
            self.invitee.get(f"/l/{token}?tz=UTC&date={day(days_ahead)}").get_data(as_text=True)
        )
        response = self.invitee.post(f"/l/{token}", data=page.form(name=name, email=email))
        assert response.status_code == 303, response.status_code
        return urlsplit(response.headers["Location"]).path.removeprefix("/b/")

    def booking(self, ref: str) -> Booking:
        return detached_booking(self.app, ref)

    def outbox(self) -> list[tuple[str, str, dict]]:
        with self.app.app_context():
            fan_out_events()
            rows = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()
            return [(row.kind, row.event_type, row.payload) for row in rows]

    def confirm_page(self) -> str:
        response = self.owner.get(f"/dashboard/calendars/{self.calendar_id}/delete")
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def confirm(self, page: str, **fields: str):
        expected = re.search(r'name="upcoming" type="hidden" value="([^"]*)"', page)
        assert expected, "the confirmation page carries the bookings it listed"
        return self.owner.post(
            f"/dashboard/calendars/{self.calendar_id}/delete",
            data={"csrf_token": csrf_of(page), "upcoming": expected.group(1), **fields},
        )


@pytest.fixture
def site(any_app: Flask) -> Site:
    app = any_app
    with app.app_context():
        owner = owners.create_owner("olga@example.com", "Olga Owner", PASSWORD)
        calendar = Calendar(
            owner_id=owner.id,
            name="Intro call",
            slug="intro",
            timezone="Europe/Berlin",
            weekly_hours=ALL_DAY,
            min_notice_minutes=0,
        )
        db.session.add(calendar)
        db.session.commit()
        webhooks.create_endpoint(
            owner, "http://127.0.0.1:9/hook", runtime().link_keys, utcnow(), allow_private=True
        )
        _key, raw = apikeys.create_api_key(owner, "tests", utcnow())
        tokens = [links.issue_link(calendar, runtime().link_keys, now=utcnow())[1] for _ in range(4)]
        ids = (calendar.id, calendar.slug, calendar.key)
    owner_client = app.test_client()
    login = csrf_of(owner_client.get("/login").get_data(as_text=True))
    response = owner_client.post(
        "/login", data={"csrf_token": login, "email": "olga@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    return Site(app, owner_client, app.test_client(), raw, *ids, tokens)


def _past_booking(site: Site, make_booking: MakeBooking) -> str:
    """A booking that took place last week."""
    with site.app.app_context():
        start = utcnow() - timedelta(days=7)
        return make_booking(
            site.calendar_id, start, invitee_name="Pat Past", invitee_email="pat@example.com"
        ).ref


def test_delete_first_lists_the_upcoming_bookings_and_declining_changes_nothing(
    site: Site, make_booking: MakeBooking
) -> None:
    ivy = site.book(site.tokens[0], 3, "Ivy Invitee", "ivy@example.com")
    site.book(site.tokens[1], 5, "Jon Jones", "jon@example.com")
    gone = site.book(site.tokens[2], 4, "Cas Cancelled", "cas@example.com")
    manage = site.invitee.get(f"/b/{gone}").get_data(as_text=True)
    assert site.invitee.post(f"/b/{gone}/cancel", data={"csrf_token": csrf_of(manage)}).status_code == 303
    _past_booking(site, make_booking)
    before = site.outbox()

    page = site.confirm_page()
    assert "Ivy Invitee" in page and "ivy@example.com" in page and "Jon Jones" in page
    # Cancelled and past bookings are not the owner's to cancel again.
    assert "Cas Cancelled" not in page and "Pat Past" not in page
    booking = site.booking(ivy)
    berlin = booking.start_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert berlin.strftime("%H:%M") in page and "Europe/Berlin" in page.replace("_", " ")
    assert "2 upcoming bookings" in page and "Keep the calendar" in page

    # Looking (and walking away) changes nothing.
    assert site.booking(ivy).cancelled_at is None
    assert site.outbox() == before
    assert site.invitee.get("/c/intro").status_code == 200
    assert "Intro call" in site.owner.get("/dashboard/").get_data(as_text=True)


def test_confirming_cancels_each_as_an_owner_cancel_and_archives_the_calendar(
    site: Site, make_booking: MakeBooking
) -> None:
    ivy = site.book(site.tokens[0], 3, "Ivy Invitee", "ivy@example.com")
    jon = site.book(site.tokens[1], 5, "Jon Jones", "jon@example.com")
    past = _past_booking(site, make_booking)
    queued = len(site.outbox())

    response = site.confirm(site.confirm_page(), message="Sorry, I am closing this calendar.")
    assert response.status_code == 302
    assert "Archived" in site.owner.get(response.headers["Location"]).get_data(as_text=True)

    for ref in (ivy, jon):
        booking = site.booking(ref)
        assert booking.cancelled_by == "owner" and booking.sequence == 1
        assert booking.cancel_reason == "Sorry, I am closing this calendar."
    assert site.booking(past).cancelled_at is None
    new = site.outbox()[queued:]
    cancellations = [(kind, payload) for kind, event, payload in new if event == "booking.cancelled"]
    emails = sorted(p["to"] for kind, p in cancellations if kind == "email")
    assert emails == ["ivy@example.com", "jon@example.com", "olga@example.com", "olga@example.com"]
    assert all(p["booking"]["method"] == "CANCEL" for kind, p in cancellations if kind == "email")
    assert len([kind for kind, _ in cancellations if kind == "webhook"]) == 2
    # The links are revoked without a link.revoked for each.
    assert [event for _kind, event, _ in new if event != "booking.cancelled"] == []
    assert site.booking(ivy).remind_at is None and site.booking(jon).remind_at is None  # no reminders

    # Out of the dashboard's list (kept below it for its records), the public pages and the API's calendars.
    home = site.owner.get("/dashboard/").get_data(as_text=True)
    assert 'class="calendar-list"' not in home and "Your calendars" in home
    kept = home[home.index('class="card archived-calendars"') :]
    assert "Intro call" in kept and f"/dashboard/calendars/{site.calendar_id}/bookings" in kept
    assert site.invitee.get("/c/intro").status_code == 404
    assert site.invitee.get(f"/p/{site.key}").status_code == 404
    assert site.api("GET", "/calendars").get_json()["items"] == []
    # Its links answer 410 and read revoked.
    for token in site.tokens:
        assert site.invitee.get(f"/l/{token}").status_code == 410
    statuses = {item["status"] for item in site.api("GET", "/one-time-links").get_json()["items"]}
    assert statuses == {"revoked"}
    links_page = site.owner.get(f"/dashboard/calendars/{site.calendar_id}/links").get_data(as_text=True)
    assert links_page.count("badge-revoked") == len(site.tokens) and "New one-time link" not in links_page
    # No new link on it, by the API or the dashboard.
    created = site.api("POST", "/one-time-links", json={"calendar": "intro"})
    assert created.status_code == 404
    assert site.api("POST", "/one-time-links", json={"calendar": site.calendar_id}).status_code == 404
    assert site.owner.get(f"/dashboard/calendars/{site.calendar_id}/share").status_code == 404
    token = csrf_of(site.owner.get("/dashboard/profile").get_data(as_text=True))
    made = site.owner.post(f"/dashboard/calendars/{site.calendar_id}/links", data={"csrf_token": token})
    assert made.status_code == 404
    # Its bookings stay in the owner's records.
    records = site.api("GET", "/bookings").get_json()["items"]
    assert {item["ref"] for item in records} == {ivy, jon, past}
    # Its slug, now free, is kept readable beside a mark no live slug can have.
    assert {item["calendar"] for item in records} == {f"intro~archived-{site.calendar_id}"}
    export = site.owner.get("/dashboard/bookings.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert {(row["calendar"], row["invitee_name"], row["status"]) for row in rows} == {
        ("Intro call", "Ivy Invitee", "cancelled"),
        ("Intro call", "Jon Jones", "cancelled"),
        ("Intro call", "Pat Past", "confirmed"),
    }
    # The invitee's own page still shows what happened.
    assert "cancelled" in site.invitee.get(f"/b/{ivy}").get_data(as_text=True)


def test_an_archived_calendars_slug_is_free_again(site: Site) -> None:
    site.book(site.tokens[0], 3, "Ivy Invitee", "ivy@example.com")
    assert site.confirm(site.confirm_page()).status_code == 302
    form = site.owner.get("/dashboard/calendars/new").get_data(as_text=True)
    data = {
        "csrf_token": csrf_of(form),
        "name": "Intro call, again",
        "slug": "intro",
        "timezone": "UTC",
        "duration_minutes": "30",
        "min_notice_minutes": "0",
        "days_ahead": "30",
        "buffer_minutes": "0",
        **{f"hours_{i}": "00:00-24:00" for i in range(7)},
        "date_overrides": "",
        "public_page_enabled": "y",
        "allow_cancel": "y",
        "allow_reschedule": "y",
        "change_cutoff_hours": "0",
        "embed_origins": "",
    }
    response = site.owner.post("/dashboard/calendars/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "Intro call, again" in site.invitee.get("/c/intro").get_data(as_text=True)
    assert site.api("POST", "/one-time-links", json={"calendar": "intro"}).status_code == 201
    (calendar,) = site.api("GET", "/calendars").get_json()["items"]
    assert calendar["slug"] == "intro" and calendar["id"] != site.calendar_id


def test_a_calendar_with_nothing_on_it_is_removed(any_app: Flask) -> None:
    with any_app.app_context():
        owner = owners.create_owner("olga@example.com", "Olga Owner", PASSWORD)
        calendar = Calendar(owner_id=owner.id, name="Unused", slug="unused", weekly_hours=ALL_DAY)
        db.session.add(calendar)
        db.session.commit()
        calendar_id = calendar.id
    client = any_app.test_client()
    login = csrf_of(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"csrf_token": login, "email": "olga@example.com", "password": PASSWORD})
    page = client.get(f"/dashboard/calendars/{calendar_id}/delete").get_data(as_text=True)
    assert "No one has booked it" in page
    response = client.post(
        f"/dashboard/calendars/{calendar_id}/delete", data={"csrf_token": csrf_of(page), "upcoming": ""}
    )
    assert response.status_code == 302
    with any_app.app_context():
        assert db.session.get(Calendar, calendar_id) is None


def test_a_booking_made_after_the_list_was_shown_is_listed_before_anything_is_done(site: Site) -> None:
    ivy = site.book(site.tokens[0], 3, "Ivy Invitee", "ivy@example.com")
    page = site.confirm_page()
    late = site.book(site.tokens[1], 6, "Lou Late", "lou@example.com")

    response = site.confirm(page)
    assert response.status_code == 409
    again = response.get_data(as_text=True)
    assert "Lou Late" in again and "Ivy Invitee" in again
    assert site.booking(ivy).cancelled_at is None and site.booking(late).cancelled_at is None
    assert site.invitee.get("/c/intro").status_code == 200

    assert site.confirm(again).status_code == 302
    assert site.booking(late).cancelled_by == "owner"


def test_the_cli_cannot_make_links_on_an_archived_calendar(site: Site) -> None:
    site.book(site.tokens[0], 3, "Ivy Invitee", "ivy@example.com")
    assert site.confirm(site.confirm_page()).status_code == 302
    result = site.app.test_cli_runner().invoke(args=["link", "create", "intro"])
    assert result.exit_code != 0 and "no calendar with slug intro" in result.output
    with site.app.app_context():
        count = db.session.scalar(sa.select(sa.func.count(OneTimeLink.id)))
    assert count == len(site.tokens)


@pytest.mark.parametrize("round_", range(6))
def test_a_deletion_racing_bookings_cancels_all_or_asks_again(site: Site, round_: int) -> None:
    """A booking takes the link, then the calendar; the deletion takes them in the same order."""
    ivy = site.book(site.tokens[0], 2 + round_, "Ivy Invitee", "ivy@example.com")
    confirm = site.confirm_page()
    link_page = BookingPage.parse(
        site.invitee.get(f"/l/{site.tokens[1]}?tz=UTC&date={day(3 + round_)}").get_data(as_text=True)
    )
    public = site.app.test_client()
    public_page = BookingPage.parse(
        public.get(f"/c/intro?tz=UTC&date={day(4 + round_)}").get_data(as_text=True)
    )

    def later(call: Callable[[], TestResponse]) -> Callable[[], TestResponse]:
        # The deletion's request does more before its transaction: the bookings are
        # held back by steps, so that rounds see each side take its turn first.
        return lambda: (time.sleep(round_ * 0.015), call())[1]

    deleted, by_link, by_page = together(
        lambda: site.confirm(confirm),
        later(
            lambda: site.invitee.post(
                f"/l/{site.tokens[1]}", data=link_page.form(name="Lin Link", email="lin@example.com")
            )
        ),
        later(
            lambda: public.post("/c/intro", data=public_page.form(name="Pia Page", email="pia@example.com"))
        ),
    )

    with site.app.app_context():
        calendar = db.session.get_one(Calendar, site.calendar_id)
        live = db.session.scalars(
            sa.select(Booking.invitee_name).where(
                Booking.calendar_id == site.calendar_id, Booking.cancelled_at.is_(None)
            )
        ).all()
    if deleted.status_code == 302:
        # It went first: its link is revoked, its page gone, nothing left booked on it.
        assert calendar.archived_at is not None and live == []
        assert (by_link.status_code, by_page.status_code) == (410, 404)
    else:
        # A booking came first: nothing was cancelled, the owner is asked again.
        assert deleted.status_code == 409 and calendar.archived_at is None
        assert "Ivy Invitee" in live and 303 in (by_link.status_code, by_page.status_code)
        assert site.booking(ivy).cancelled_at is None


def test_a_message_too_long_is_a_field_error_and_keeps_what_was_typed(site: Site) -> None:
    ivy = site.book(site.tokens[0], 3, "Ivy Invitee", "ivy@example.com")
    message = "Sorry. " * 150
    response = site.confirm(site.confirm_page(), message=message)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Field cannot be longer than 1000 characters." in html and message.strip() in html
    assert site.booking(ivy).cancelled_at is None
    assert site.invitee.get("/c/intro").status_code == 200
