"""A booking form sent again (PRODUCT.md rule 8): only the same slot and email find its booking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from oncecal.extensions import db
from oncecal.models import Booking
from oncecal.templating import iso_utc, long_date
from tests.support.pages import BookingPage
from tests.test_booking_pages import booking_count, open_page, uses

pytestmark = pytest.mark.usefixtures("ctx")

STRANGER = {"name": "Mallory Other", "email": "mallory@example.net"}


def the_booking(response: TestResponse) -> Booking:
    assert response.status_code == 303, response.status_code
    ref = response.headers["Location"].rsplit("/b/", 1)[1].split("?")[0]
    return db.session.scalar(sa.select(Booking).where(Booking.ref == ref))


def revealed(response: TestResponse, booking: Booking) -> list[str]:
    """Return what of ``booking`` the response shows: its ref, invitee or time (rule 8: none)."""
    shown = (response.get_data(as_text=True) + response.headers.get("Location", "")).lower()
    start = booking.start_at
    traces = [
        booking.ref,
        booking.invitee_name,
        booking.invitee_email,
        iso_utc(start),
        f"{long_date(start, UTC)}, {start:%H:%M}",
    ]
    return [trace for trace in traces if trace.lower() in shown]


def as_offset_time(slot: str) -> str:
    """Write a slot value's instant with a +01:00 offset instead of Z."""
    return datetime.fromisoformat(slot).astimezone(timezone(timedelta(hours=1))).isoformat()


@dataclass
class UsedLink:
    link_id: int
    token: str
    page: BookingPage  # the page whose form used the link
    first: dict[str, str]  # what that form posted
    booking: Booking


class TestUsedLink:
    """A single-use link, used by a form; that form's id sent again."""

    @pytest.fixture
    def used(self, client: FlaskClient, make_link) -> UsedLink:
        link, token = make_link()
        page = open_page(client, f"/l/{token}")
        first = page.form()
        return UsedLink(link.id, token, page, first, the_booking(client.post(f"/l/{token}", data=first)))

    def test_other_slot_name_and_email_answer_410_and_reveal_nothing(self, client, used):
        response = client.post(f"/l/{used.token}", data=used.page.form(slot=used.page.slots[3], **STRANGER))
        assert response.status_code == 410
        assert "This link has expired" in response.get_data(as_text=True)
        assert revealed(response, used.booking) == []
        assert booking_count() == 1 and uses(used.link_id) == 1

    def test_the_same_slot_and_email_answer_303_to_the_same_booking(self, client, used):
        # The email as typed again (case, spaces) and the slot as the same instant.
        again = {**used.first, "email": "  IVY@Example.COM ", "slot": as_offset_time(used.first["slot"])}
        response = client.post(f"/l/{used.token}", data=again)
        assert response.status_code == 303
        assert response.headers["Location"].endswith(f"/b/{used.booking.ref}")
        assert booking_count() == 1

    def test_the_same_slot_with_another_email_answers_410(self, client, used):
        response = client.post(f"/l/{used.token}", data=used.page.form(slot=used.first["slot"], **STRANGER))
        assert response.status_code == 410
        assert revealed(response, used.booking) == []

    def test_another_slot_with_the_same_email_answers_410(self, client, used):
        response = client.post(f"/l/{used.token}", data={**used.first, "slot": used.page.slots[2]})
        assert response.status_code == 410
        assert revealed(response, used.booking) == []


def assert_fresh_form(response: TestResponse, replayed: str) -> BookingPage:
    assert response.status_code == 409
    fresh = BookingPage.parse(response.get_data(as_text=True))
    assert fresh.csrf_token != replayed
    assert "This form was already used" in response.get_data(as_text=True)
    return fresh


class TestLinkWithUsesLeft:
    def test_another_attempt_answers_409_with_a_fresh_form_and_leaves_the_link(self, client, make_link):
        link, token = make_link(max_uses=3)
        page = open_page(client, f"/l/{token}")
        booking = the_booking(client.post(f"/l/{token}", data=page.form()))
        booked = (booking.start_at, booking.invitee_name, booking.invitee_email)

        response = client.post(f"/l/{token}", data=page.form(slot=page.slots[3], **STRANGER))
        fresh = assert_fresh_form(response, page.csrf_token)
        assert revealed(response, booking) == []
        assert 'value="Mallory Other"' in response.get_data(as_text=True)  # what was typed is kept
        assert booking_count() == 1 and uses(link.id) == 1
        db.session.expire_all()
        kept = db.session.get_one(Booking, booking.id)
        assert (kept.start_at, kept.invitee_name, kept.invitee_email) == booked

        second = the_booking(client.post(f"/l/{token}", data=fresh.form(slot=page.slots[3], **STRANGER)))
        assert second.id != booking.id and uses(link.id) == 2

    def test_the_same_slot_with_another_email_answers_409(self, client, make_link):
        link, token = make_link(max_uses=3)
        page = open_page(client, f"/l/{token}")
        booking = the_booking(client.post(f"/l/{token}", data=page.form()))
        response = client.post(f"/l/{token}", data=page.form(**STRANGER))
        assert_fresh_form(response, page.csrf_token)
        assert revealed(response, booking) == []
        assert uses(link.id) == 1

    def test_the_same_form_again_answers_303_to_the_same_booking(self, client, make_link):
        link, token = make_link(max_uses=3)
        form = open_page(client, f"/l/{token}").form()
        first = client.post(f"/l/{token}", data=form)
        again = client.post(f"/l/{token}", data=form)
        assert again.status_code == 303 and again.headers["Location"] == first.headers["Location"]
        assert booking_count() == 1 and uses(link.id) == 1


@pytest.mark.parametrize("shown_at", ["/c/open-hours", "/p/{key}"])
class TestPublicPages:
    """The calendar's page and its permanent link: both post to /c/<slug>."""

    def test_another_attempt_answers_409_with_a_fresh_form(self, client, make_calendar, shown_at):
        calendar = make_calendar(slug="open-hours")
        page = open_page(client, shown_at.format(key=calendar.key))
        booking = the_booking(client.post("/c/open-hours", data=page.form()))
        response = client.post("/c/open-hours", data=page.form(slot=page.slots[3], **STRANGER))
        fresh = assert_fresh_form(response, page.csrf_token)
        assert revealed(response, booking) == []
        assert booking_count() == 1
        second = the_booking(client.post("/c/open-hours", data=fresh.form(slot=page.slots[3], **STRANGER)))
        assert second.id != booking.id

    def test_another_slot_with_the_same_email_answers_409(self, client, make_calendar, shown_at):
        calendar = make_calendar(slug="open-hours")
        page = open_page(client, shown_at.format(key=calendar.key))
        booking = the_booking(client.post("/c/open-hours", data=page.form()))
        response = client.post("/c/open-hours", data=page.form(slot=page.slots[1]))
        assert_fresh_form(response, page.csrf_token)
        html = response.get_data(as_text=True)
        assert booking.ref not in html and iso_utc(booking.start_at) not in html
        assert booking_count() == 1

    def test_the_same_slot_and_email_answer_303_to_the_same_booking(self, client, make_calendar, shown_at):
        calendar = make_calendar(slug="open-hours")
        page = open_page(client, shown_at.format(key=calendar.key))
        form = page.form()
        booking = the_booking(client.post("/c/open-hours", data=form))
        again = client.post("/c/open-hours", data={**form, "email": "Ivy@Example.com"})
        assert again.status_code == 303 and again.headers["Location"].endswith(f"/b/{booking.ref}")
        assert booking_count() == 1
