"""The invitee pages through the Flask test client: every status code of /l/ and friends."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from icalendar import Calendar as ICalendar

from oncecal.extensions import db
from oncecal.models import Booking, OneTimeLink, utcnow
from oncecal.services import bookings
from tests.support.pages import BookingPage

pytestmark = pytest.mark.usefixtures("ctx")


def open_page(client, path: str) -> BookingPage:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return BookingPage.parse(response.get_data(as_text=True))


def uses(link_id: int) -> int:
    db.session.expire_all()
    return db.session.get_one(OneTimeLink, link_id).uses


def booking_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(Booking.id)))


class TestOpeningALink:
    def test_active_link_shows_calendar_owner_and_form(self, client, make_owner, make_calendar, make_link):
        owner = make_owner(name="Olga Owner")
        calendar = make_calendar(owner, name="Strategy session", duration_minutes=45, location="Room 4")
        _, token = make_link(calendar)
        response = client.get(f"/l/{token}")
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        for text in ("Strategy session", "Olga Owner", "45 min", "Room 4", 'method="post"'):
            assert text in html
        for name in ("slot", "name", "email", "notes", "timezone", "csrf_token"):
            assert f'name="{name}"' in html
        assert BookingPage.parse(html).slots[0].endswith("Z")

    def test_token_pages_are_private(self, client, make_link):
        _, token = make_link()
        response = client.get(f"/l/{token}")
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Robots-Tag"] == "noindex"

    def test_opening_a_link_many_times_never_uses_it(self, client, make_link):
        link, token = make_link()
        for _ in range(5):
            assert client.get(f"/l/{token}").status_code == 200
            client.head(f"/l/{token}")
        assert uses(link.id) == 0

    def test_unknown_and_malformed_tokens_get_the_same_404(self, client, make_link):
        _, token = make_link()
        unknown = client.get(f"/l/{'A' * 43}")
        malformed = client.get("/l/not-a-token")
        almost = client.get(f"/l/{token[:-2]}")
        assert unknown.status_code == malformed.status_code == almost.status_code == 404
        assert unknown.data == malformed.data == almost.data

    def test_guessing_is_throttled_but_valid_links_still_open(self, app, client, make_link):
        _, token = make_link()
        app.config["TOKEN_FAILURE_LIMIT"] = "3 per minute"
        from oncecal.app_objects import init_runtime

        init_runtime(app)
        statuses = [client.get(f"/l/{'B' * 42}{i}").status_code for i in range(5)]
        assert statuses == [404, 404, 404, 429, 429]
        throttled = client.get(f"/l/{'C' * 43}")
        assert throttled.status_code == 429
        assert int(throttled.headers["Retry-After"]) > 0
        assert client.get(f"/l/{token}").status_code == 200

    def test_prefill_from_the_link_and_from_the_url(self, client, make_link):
        _, token = make_link(prefill_name="Pat Prefill", prefill_email="pat@example.com")
        html = client.get(f"/l/{token}").get_data(as_text=True)
        assert 'value="Pat Prefill"' in html and 'value="pat@example.com"' in html
        html = client.get(f"/l/{token}?name=Quinn&email=quinn@example.com").get_data(as_text=True)
        assert 'value="Quinn"' in html and 'value="quinn@example.com"' in html

    def test_times_show_in_the_tz_parameter_else_the_calendar_zone(self, client, make_calendar, make_link):
        calendar = make_calendar(timezone="Asia/Tokyo")
        _, token = make_link(calendar)
        assert open_page(client, f"/l/{token}").timezone == "Asia/Tokyo"
        assert open_page(client, f"/l/{token}?tz=America/New_York").timezone == "America/New_York"
        assert open_page(client, f"/l/{token}?tz=Mars/Olympus").timezone == "Asia/Tokyo"

    def test_date_parameter_chooses_the_first_day_shown(self, client, make_link):
        _, token = make_link()
        later = (utcnow() + timedelta(days=10)).date()
        page = open_page(client, f"/l/{token}?date={later.isoformat()}&tz=UTC")
        assert page.slots[0].startswith(later.isoformat())
        assert open_page(client, f"/l/{token}?date=garbage").slots

    def test_no_open_times_says_so_and_how_to_reach_the_owner(
        self, client, make_owner, make_calendar, make_link
    ):
        owner = make_owner(name="Nora", email="nora@example.com")
        calendar = make_calendar(owner, weekly_hours={})
        _, token = make_link(calendar)
        response = client.get(f"/l/{token}")
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "No times are open right now" in html
        assert "nora@example.com" in html


class TestBookingThroughALink:
    def test_successful_booking_answers_303_to_the_booking(self, client, make_link):
        link, token = make_link()
        page = open_page(client, f"/l/{token}")
        response = client.post(f"/l/{token}", data=page.form())
        assert response.status_code == 303
        ref = response.headers["Location"].rsplit("/", 1)[-1]
        booking = db.session.scalar(sa.select(Booking).where(Booking.ref == ref))
        assert booking.link_id == link.id
        assert booking.start_at.strftime("%Y-%m-%dT%H:%M:%SZ") == page.slots[0]
        assert uses(link.id) == 1

    def test_second_visit_to_a_used_link_shows_the_expired_page(
        self, client, make_owner, make_calendar, make_link
    ):
        owner = make_owner(name="Olga Owner", email="olga@example.com", phone="+49 30 1234567")
        _, token = make_link(make_calendar(owner))
        client.post(f"/l/{token}", data=open_page(client, f"/l/{token}").form())
        response = client.get(f"/l/{token}")
        html = response.get_data(as_text=True)
        assert response.status_code == 410
        assert "This link has expired" in html
        assert "contact Olga Owner" in html
        assert "olga@example.com" in html and "+49 30 1234567" in html

    def test_expired_page_shows_only_the_contact_details_the_owner_chose(
        self, client, make_owner, make_calendar, make_link
    ):
        owner = make_owner(
            name="Sam Private",
            email="sam@example.com",
            phone="+1 555 0199",
            show_email=False,
            show_phone=False,
            expired_message="Please call the office for a new link.",
        )
        link, token = make_link(make_calendar(owner))
        link.revoked_at = utcnow()
        db.session.commit()
        html = client.get(f"/l/{token}").get_data(as_text=True)
        assert "Sam Private" in html
        assert "sam@example.com" not in html and "555 0199" not in html
        assert "Please call the office for a new link." in html

    def test_repeated_post_of_the_same_form_answers_the_same_booking(self, client, make_link):
        link, token = make_link()
        form = open_page(client, f"/l/{token}").form()
        first = client.post(f"/l/{token}", data=form)
        again = client.post(f"/l/{token}", data=form)
        assert first.status_code == again.status_code == 303
        assert first.headers["Location"] == again.headers["Location"]
        assert booking_count() == 1 and uses(link.id) == 1

    def test_a_new_form_on_a_used_link_answers_410(self, client, make_link):
        _, token = make_link()
        first_page = open_page(client, f"/l/{token}")
        second_page = open_page(client, f"/l/{token}")
        assert client.post(f"/l/{token}", data=first_page.form()).status_code == 303
        response = client.post(f"/l/{token}", data=second_page.form(slot=second_page.slots[3]))
        assert response.status_code == 410
        assert booking_count() == 1

    @pytest.mark.parametrize("state", ["revoked", "expired"])
    def test_revoked_or_expired_link_answers_410_on_get_and_post(self, client, make_link, state):
        link, token = make_link()
        form = open_page(client, f"/l/{token}").form()
        if state == "revoked":
            link.revoked_at = utcnow()
        else:
            link.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert client.get(f"/l/{token}").status_code == 410
        assert client.post(f"/l/{token}", data=form).status_code == 410
        assert booking_count() == 0

    def test_taken_slot_answers_409_with_fresh_slots_and_the_link_unused(
        self, client, make_calendar, make_link
    ):
        calendar = make_calendar()
        _, winner = make_link(calendar)
        loser_link, loser = make_link(calendar)
        slot = open_page(client, f"/l/{winner}").slots[0]
        loser_form = open_page(client, f"/l/{loser}").form(slot=slot, name="Lee Loser", notes="Keep me")
        assert (
            client.post(f"/l/{winner}", data=open_page(client, f"/l/{winner}").form(slot=slot)).status_code
            == 303
        )
        response = client.post(f"/l/{loser}", data=loser_form)
        html = response.get_data(as_text=True)
        assert response.status_code == 409
        assert "no longer available" in html
        assert slot not in BookingPage.parse(html).slots
        assert 'value="Lee Loser"' in html and "Keep me" in html
        assert uses(loser_link.id) == 0

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("name", "", "Enter your name."),
            ("email", "not-an-email", "Enter a valid email address"),
            ("slot", "", "Choose a time."),
            ("slot", "tomorrow at nine", "That time is not valid"),
            ("slot", "2026-12-01T09:00:00", "That time is not valid"),
            ("timezone", "Mars/Olympus", "Choose a valid time zone."),
            ("name", "Nul\x00Byte", "remove the control character U+0000"),
            ("notes", "x" * 2001, "2000"),
        ],
    )
    def test_malformed_input_answers_400_with_field_errors(self, client, make_link, field, value, message):
        link, token = make_link()
        form = open_page(client, f"/l/{token}").form(**{field: value})
        response = client.post(f"/l/{token}", data=form)
        html = response.get_data(as_text=True)
        assert response.status_code == 400
        assert message in html
        assert 'aria-invalid="true"' in html or 'role="alert"' in html
        assert uses(link.id) == 0 and booking_count() == 0

    def test_400_keeps_what_the_invitee_typed(self, client, make_link):
        _, token = make_link()
        form = open_page(client, f"/l/{token}").form(email="broken", name="Kim Kept", notes="My notes")
        html = client.post(f"/l/{token}", data=form).get_data(as_text=True)
        assert 'value="Kim Kept"' in html and "My notes" in html and 'value="broken"' in html

    @pytest.mark.parametrize("token_value", ["", "forged", "use-the-other-link"])
    def test_form_token_must_be_signed_and_bound_to_this_link(
        self, client, make_calendar, make_link, token_value
    ):
        calendar = make_calendar()
        link, token = make_link(calendar)
        _, other = make_link(calendar)
        form = open_page(client, f"/l/{token}").form()
        if token_value == "use-the-other-link":
            form["csrf_token"] = open_page(client, f"/l/{other}").csrf_token
        else:
            form["csrf_token"] = token_value
        response = client.post(f"/l/{token}", data=form)
        assert response.status_code == 400
        assert "This form has expired" in response.get_data(as_text=True)
        assert uses(link.id) == 0

    def test_form_token_expires(self, app, client, make_link):
        _, token = make_link()
        form = open_page(client, f"/l/{token}").form()
        app.config["FORM_TOKEN_MAX_AGE"] = -1
        assert client.post(f"/l/{token}", data=form).status_code == 400

    def test_slot_in_the_past_or_off_the_grid_answers_409(self, client, make_link):
        link, token = make_link()
        page = open_page(client, f"/l/{token}")
        past = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:00:00Z")
        odd = page.slots[0].replace(":00:00Z", ":07:00Z").replace(":30:00Z", ":37:00Z")
        for slot in (past, odd):
            response = client.post(f"/l/{token}", data=page.form(slot=slot))
            assert response.status_code == 409
        assert uses(link.id) == 0

    def test_slot_inside_the_notice_period_answers_409(self, client, make_calendar, make_link):
        calendar = make_calendar(min_notice_minutes=24 * 60)
        link, token = make_link(calendar)
        page = open_page(client, f"/l/{token}")
        soon = (utcnow() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:00:00Z")
        assert client.post(f"/l/{token}", data=page.form(slot=soon)).status_code == 409
        assert uses(link.id) == 0

    def test_flow_parameters_survive_the_redirect(self, client, make_link):
        _, token = make_link()
        query = "embed=1&host=https://example.org&tz=Europe/Paris&theme=dark&name=Ann"
        page = open_page(client, f"/l/{token}?{query}")
        response = client.post(f"/l/{token}?{query}", data=page.form())
        location = urlsplit(response.headers["Location"])
        assert parse_qs(location.query) == {
            "embed": ["1"],
            "host": ["https://example.org"],
            "tz": ["Europe/Paris"],
            "theme": ["dark"],
        }


class TestPublicPages:
    def test_calendar_page_books_without_a_link(self, client, make_calendar):
        calendar = make_calendar(slug="open-hours")
        page = open_page(client, "/c/open-hours")
        response = client.post("/c/open-hours", data=page.form())
        assert response.status_code == 303
        booking = db.session.scalar(sa.select(Booking))
        assert booking.link_id is None and booking.calendar_id == calendar.id
        assert client.get("/c/open-hours").status_code == 200

    def test_permanent_link_shows_the_same_page(self, client, make_calendar):
        calendar = make_calendar(slug="first-slug")
        assert open_page(client, f"/p/{calendar.key}").slots
        calendar.slug = "second-slug"
        db.session.commit()
        html = client.get(f"/p/{calendar.key}").get_data(as_text=True)
        assert 'action="/c/second-slug"' in html

    def test_switched_off_public_page_answers_404_but_links_work(self, client, make_calendar, make_link):
        calendar = make_calendar(slug="private", public_page_enabled=False)
        _, token = make_link(calendar)
        assert client.get("/c/private").status_code == 404
        assert client.get(f"/p/{calendar.key}").status_code == 404
        assert client.get(f"/l/{token}").status_code == 200

    def test_taken_slot_on_the_calendar_page_answers_409(self, client, make_calendar):
        make_calendar(slug="busy")
        first, second = open_page(client, "/c/busy"), open_page(client, "/c/busy")
        assert client.post("/c/busy", data=first.form()).status_code == 303
        assert client.post("/c/busy", data=second.form(slot=first.slots[0])).status_code == 409

    def test_form_of_one_calendar_is_refused_by_another(self, client, make_calendar):
        make_calendar(slug="one")
        make_calendar(slug="two")
        response = client.post("/c/two", data=open_page(client, "/c/one").form())
        assert response.status_code == 400


class TestConfirmation:
    def book(self, client, token: str, **fields: str) -> str:
        page = open_page(client, f"/l/{token}")
        return client.post(f"/l/{token}", data=page.form(**fields)).headers["Location"]

    def test_confirmation_shows_both_zones_duration_location_owner(
        self, client, make_owner, make_calendar, make_link
    ):
        owner = make_owner(name="Olga Owner")
        calendar = make_calendar(owner, timezone="Europe/Berlin", location="https://meet.example/abc")
        _, token = make_link(calendar)
        location = self.book(client, token, timezone="America/New_York")
        response = client.get(location)
        html = response.get_data(as_text=True)
        booking = db.session.scalar(sa.select(Booking))
        assert response.status_code == 200
        assert "You are booked" in html and "Olga Owner" in html and "30 min" in html
        assert "https://meet.example/abc" in html
        assert booking.start_at.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") in html
        assert booking.start_at.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") in html
        assert response.headers["Cache-Control"] == "no-store"

    def test_unknown_booking_ref_answers_404(self, client):
        assert client.get("/b/doesnotexist").status_code == 404
        assert client.get("/b/doesnotexist/invite.ics").status_code == 404

    def test_invite_ics_has_a_stable_uid_and_the_booked_time(self, client, make_calendar, make_link):
        _, token = make_link(make_calendar(location="Room 7"))
        location = self.book(client, token)
        first = client.get(f"{location}/invite.ics")
        second = client.get(f"{location}/invite.ics")
        assert first.status_code == 200
        assert first.headers["Content-Type"].startswith("text/calendar")
        events = [ICalendar.from_ical(r.data).walk("VEVENT")[0] for r in (first, second)]
        booking = db.session.scalar(sa.select(Booking))
        assert events[0]["UID"] == events[1]["UID"]
        assert booking.ref not in str(events[0]["UID"])
        assert events[0].decoded("DTSTART") == booking.start_at
        assert events[0].decoded("DTEND") == booking.end_at
        assert str(events[0]["LOCATION"]) == "Room 7"

    def test_downloaded_ics_is_a_plain_calendar_object_not_a_scheduling_message(self, client, make_link):
        # RFC 5546 forbids ATTENDEE in METHOD:PUBLISH; a download is for import, so it has no METHOD
        # and keeps the people. The emails' REQUEST/CANCEL attachments are pinned in test_mail.py.
        _, token = make_link()
        location = self.book(client, token, name="Ann Lee", email="ann@example.com")
        downloaded = ICalendar.from_ical(client.get(f"{location}/invite.ics").data)
        (event,) = downloaded.walk("VEVENT")
        assert "METHOD" not in downloaded
        assert str(event["ATTENDEE"]) == "mailto:ann@example.com"
        assert event["ATTENDEE"].params["CN"] == "Ann Lee"
        assert str(event["ORGANIZER"]).startswith("mailto:")

    def test_cancelled_booking_page_says_so(self, client, make_link):
        _, token = make_link()
        location = self.book(client, token)
        booking = db.session.scalar(sa.select(Booking))
        booking.cancelled_at = utcnow()
        db.session.commit()
        assert "This booking was cancelled" in client.get(location).get_data(as_text=True)


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_open_slots_agree_with_the_page(client, make_link):
    link, token = make_link()
    page = open_page(client, f"/l/{token}?tz=UTC")
    first = bookings.open_slots(link.calendar, utcnow())[0]
    assert page.slots[0] == first.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("accept_language", "twelve_hour"),
    [("en-US,en;q=0.9", True), ("de-DE,de;q=0.9", False), ("en-GB", False), ("", False)],
)
def test_times_follow_accept_language_without_javascript(
    client, make_calendar, make_link, accept_language, twelve_hour
):
    _, token = make_link(make_calendar(timezone="UTC"))
    html = client.get(f"/l/{token}?tz=UTC", headers={"Accept-Language": accept_language}).get_data(
        as_text=True
    )
    label = re.search(r'<time datetime="[^"]+">([^<]+)</time>', html).group(1)
    assert label.endswith(("AM", "PM")) is twelve_hour
    assert re.search(r'aria-label="\w+day, \d+ \w+ \d{4}, ', html), "slots carry their date and time in words"
