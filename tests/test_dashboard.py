"""The owner dashboard through the test client: forms, CSRF, and owners kept apart."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink, Owner, utcnow
from oncecal.services import owners
from tests.conftest import ALL_DAY
from tests.support.pages import BookingPage

PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def form_post(client, path: str, data: dict, *, page: str | None = None):
    """Post a form the way a browser would: with the CSRF token of its page."""
    token = csrf_of(client.get(page or path).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data})


def log_in(client, email: str, password: str = PASSWORD):
    return form_post(client, "/login", {"email": email, "password": password})


@pytest.fixture
def owner(app) -> SimpleNamespace:
    with app.app_context():
        owner = owners.create_owner("olga@example.com", "Olga Owner", PASSWORD)
        return SimpleNamespace(id=owner.id, email=owner.email)


@pytest.fixture
def logged_in(client, owner):
    assert log_in(client, owner.email).status_code == 302
    return client


@pytest.fixture
def calendar(app, owner) -> SimpleNamespace:
    with app.app_context():
        calendar = Calendar(
            owner_id=owner.id, name="Intro", slug="intro", weekly_hours=ALL_DAY, min_notice_minutes=0
        )
        db.session.add(calendar)
        db.session.commit()
        return SimpleNamespace(id=calendar.id, key=calendar.key)


CALENDAR_FORM = {
    "name": "Deep dive",
    "slug": "",
    "timezone": "Europe/Berlin",
    "duration_minutes": "45",
    "min_notice_minutes": "60",
    "days_ahead": "30",
    "buffer_minutes": "10",
    "location": "Room 1",
    "hours_0": "09:00-12:00, 13:00-17:00",
    "hours_1": "09:00-17:00",
    "hours_2": "",
    "hours_3": "off",
    "hours_4": "10:00-11:00",
    "hours_5": "",
    "hours_6": "",
    "date_overrides": "2026-12-24: off\n2026-12-31: 10:00-12:00",
    "default_link_expiry_days": "7",
    "public_page_enabled": "y",
    "embed_origins": "https://www.example.com\nhttp://localhost:8000/",
}


class TestAccounts:
    def test_signup_creates_an_owner_and_logs_in(self, app, client):
        response = form_post(
            client, "/signup", {"name": "Nia", "email": "Nia@Example.com", "password": PASSWORD}
        )
        assert response.status_code == 302
        assert client.get("/dashboard/").status_code == 200
        with app.app_context():
            owner = db.session.scalar(sa.select(Owner))
            assert owner.email == "nia@example.com" and owner.password_hash != PASSWORD

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"name": "", "email": "a@example.com", "password": PASSWORD}, "Enter your name."),
            ({"name": "A", "email": "nope", "password": PASSWORD}, "Enter a valid email address."),
            ({"name": "A", "email": "a@example.com", "password": "short"}, "Use at least 10 characters."),
        ],
    )
    def test_signup_with_bad_input_answers_400(self, client, data, message):
        response = form_post(client, "/signup", data)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)

    def test_signup_with_a_taken_email_is_refused(self, client, owner):
        response = form_post(client, "/signup", {"name": "X", "email": owner.email, "password": PASSWORD})
        assert response.status_code == 400
        assert "exists" in response.get_data(as_text=True)

    def test_wrong_password_answers_400_and_never_logs_in(self, client, owner):
        response = log_in(client, owner.email, "wrong password!")
        assert response.status_code == 400
        assert "do not match" in response.get_data(as_text=True)
        assert client.get("/dashboard/").status_code == 302

    def test_dashboard_needs_login(self, client):
        response = client.get("/dashboard/")
        assert response.status_code == 302
        assert urlsplit(response.headers["Location"]).path == "/login"

    def test_login_follows_only_local_next(self, client, owner):
        token = csrf_of(client.get("/login").get_data(as_text=True))
        data = {"csrf_token": token, "email": owner.email, "password": PASSWORD}
        assert (
            client.post("/login?next=https://evil.example/", data=data).headers["Location"] == "/dashboard/"
        )

    def test_logout_ends_the_session(self, logged_in):
        page = logged_in.get("/dashboard/").get_data(as_text=True)
        assert logged_in.post("/logout", data={"csrf_token": csrf_of(page)}).status_code == 302
        assert logged_in.get("/dashboard/").status_code == 302

    def test_change_password(self, client, logged_in, owner):
        other_device = client.application.test_client()
        assert log_in(other_device, owner.email).status_code == 302
        assert other_device.get("/dashboard/").status_code == 200
        bad = form_post(
            logged_in,
            "/dashboard/password",
            {"current": "nope", "new": "a new long password", "confirm": "a new long password"},
        )
        assert bad.status_code == 400
        ok = form_post(
            logged_in,
            "/dashboard/password",
            {"current": PASSWORD, "new": "a new long password", "confirm": "a new long password"},
        )
        assert ok.status_code == 302
        assert logged_in.get("/dashboard/").status_code == 200  # this session goes on
        assert other_device.get("/dashboard/").status_code == 302  # every other one is logged out
        assert log_in(client.application.test_client(), owner.email, "a new long password").status_code == 302

    def test_login_is_throttled(self, client, owner):
        statuses = [log_in(client, owner.email, f"guess {i}").status_code for i in range(12)]
        assert statuses[:10] == [400] * 10
        assert statuses[10:] == [429, 429]

    def test_session_cookie_is_httponly_and_lax(self, client, owner):
        response = log_in(client, owner.email)
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


class TestCsrf:
    @pytest.mark.parametrize(
        "path",
        ["/signup", "/login", "/dashboard/calendars/new", "/dashboard/profile", "/dashboard/password"],
    )
    def test_forms_without_csrf_token_are_refused(self, logged_in, path):
        response = logged_in.post(path, data={"name": "X"})
        assert response.status_code == 400

    def test_action_buttons_without_csrf_token_are_refused(self, app, logged_in, calendar):
        for path in (
            f"/dashboard/calendars/{calendar.id}/share/generate",
            f"/dashboard/calendars/{calendar.id}/delete",
        ):
            assert logged_in.post(path).status_code == 400
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count(OneTimeLink.id))) == 0
            assert db.session.get(Calendar, calendar.id) is not None


class TestCalendars:
    def test_create_calendar_with_hours_overrides_and_origins(self, app, logged_in):
        response = form_post(logged_in, "/dashboard/calendars/new", CALENDAR_FORM)
        assert response.status_code == 302
        with app.app_context():
            calendar = db.session.scalar(sa.select(Calendar))
            assert calendar.slug == "deep-dive"
            assert calendar.weekly_hours["0"] == [["09:00", "12:00"], ["13:00", "17:00"]]
            assert calendar.weekly_hours["3"] == [] and calendar.weekly_hours["4"] == [["10:00", "11:00"]]
            assert calendar.date_overrides == {"2026-12-24": [], "2026-12-31": [["10:00", "12:00"]]}
            assert calendar.embed_origins == ["https://www.example.com", "http://localhost:8000"]
            assert calendar.default_link_expiry_minutes == 7 * 24 * 60
            assert (calendar.duration_minutes, calendar.buffer_minutes, calendar.timezone) == (
                45,
                10,
                "Europe/Berlin",
            )

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("name", "", "Give the calendar a name."),
            ("hours_0", "9 to 5", "is not a range like 09:00-17:00"),
            ("hours_1", "17:00-09:00", "ends before it starts"),
            ("hours_2", "09:00-12:00, 11:00-13:00", "must not overlap"),
            ("date_overrides", "christmas: off", "start with a date"),
            ("embed_origins", "not a url", "is not an origin"),
            ("slug", "Bad Slug!", "lowercase letters"),
            ("duration_minutes", "0", "between 5 and 720"),
            ("timezone", "Mars/Base", "Not a valid choice"),
        ],
    )
    def test_invalid_calendar_form_answers_400_and_keeps_input(self, app, logged_in, field, value, message):
        response = form_post(logged_in, "/dashboard/calendars/new", {**CALENDAR_FORM, field: value})
        html = response.get_data(as_text=True)
        assert response.status_code == 400
        assert message in html
        assert 'value="Room 1"' in html
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count(Calendar.id))) == 0

    def test_taken_slug_is_refused(self, logged_in, calendar):
        response = form_post(logged_in, "/dashboard/calendars/new", {**CALENDAR_FORM, "slug": "intro"})
        assert response.status_code == 400
        assert "Another calendar uses this address" in response.get_data(as_text=True)

    def test_edit_shows_and_saves_hours(self, app, logged_in, calendar):
        page = logged_in.get(f"/dashboard/calendars/{calendar.id}/edit").get_data(as_text=True)
        assert 'value="00:00-24:00"' in page
        response = form_post(
            logged_in,
            f"/dashboard/calendars/{calendar.id}/edit",
            {**CALENDAR_FORM, "name": "Renamed", "slug": "intro"},
        )
        assert response.status_code == 302
        with app.app_context():
            assert db.session.get(Calendar, calendar.id).name == "Renamed"

    def test_delete_of_a_calendar_with_links_archives_it_and_revokes_them(self, app, logged_in, calendar):
        form_post(logged_in, f"/dashboard/calendars/{calendar.id}/share/generate", {}, page="/dashboard/")
        path = f"/dashboard/calendars/{calendar.id}/delete"
        response = form_post(logged_in, path, {"upcoming": ""})
        assert response.status_code == 302
        with app.app_context():
            assert db.session.get_one(Calendar, calendar.id).archived_at is not None
            (link,) = db.session.scalars(sa.select(OneTimeLink)).all()
            assert link.revoked_at is not None
        assert logged_in.get(path).status_code == 404


class TestShareDialog:
    def one_time_url(self, client, calendar) -> str | None:
        html = client.get(f"/dashboard/calendars/{calendar.id}/share?tab=one-time").get_data(as_text=True)
        match = re.search(r'id="one-time-url" type="text" readonly value="([^"]+)"', html)
        return match.group(1) if match else None

    def test_dialog_has_the_four_tabs_and_never_creates_a_link(self, app, logged_in, calendar):
        html = logged_in.get(f"/dashboard/calendars/{calendar.id}/share").get_data(as_text=True)
        tabs = re.findall(r'role="tab"[^>]*>([^<]+)</a>', html)
        assert tabs == ["Scheduling Link", "Permanent Link", "One Time Link", "Embed Code"]
        assert "Generate New Link" in html and self.one_time_url(logged_in, calendar) is None
        assert "/c/intro" in html and f"/p/{calendar.key}" in html
        assert "oncecal-inline" in html and "data-oncecal-popup" in html
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count(OneTimeLink.id))) == 0

    def test_generate_new_link_keeps_older_unused_links_active(self, logged_in, calendar):
        share = f"/dashboard/calendars/{calendar.id}/share"
        form_post(logged_in, f"{share}/generate", {}, page=share)
        first = self.one_time_url(logged_in, calendar)
        form_post(logged_in, f"{share}/generate", {}, page=share)
        second = self.one_time_url(logged_in, calendar)
        assert first and second and first != second
        assert logged_in.get(urlsplit(first).path).status_code == 200
        assert logged_in.get(urlsplit(second).path).status_code == 200

    def test_used_link_is_replaced_by_the_next_unused_one(self, logged_in, calendar):
        share = f"/dashboard/calendars/{calendar.id}/share"
        form_post(logged_in, f"{share}/generate", {}, page=share)
        form_post(logged_in, f"{share}/generate", {}, page=share)
        newest = self.one_time_url(logged_in, calendar)
        path = urlsplit(newest).path
        page = BookingPage.parse(logged_in.get(path).get_data(as_text=True))
        assert logged_in.post(path, data=page.form()).status_code == 303
        older = self.one_time_url(logged_in, calendar)
        assert older and older != newest

    def test_public_page_off_says_so(self, app, logged_in, calendar):
        with app.app_context():
            db.session.get(Calendar, calendar.id).public_page_enabled = False
            db.session.commit()
        html = logged_in.get(f"/dashboard/calendars/{calendar.id}/share").get_data(as_text=True)
        assert "public scheduling page of this calendar is off" in html


class TestLinksAndBookings:
    def make_links(self, logged_in, calendar, count: int = 3) -> None:
        path = f"/dashboard/calendars/{calendar.id}/links"
        for i in range(count):
            response = form_post(
                logged_in, path, {"label": f"Contact {i}", "max_uses": "1", "expires_in_days": ""}
            )
            assert response.status_code == 302

    def test_create_link_with_prefill_and_expiry(self, app, logged_in, calendar):
        path = f"/dashboard/calendars/{calendar.id}/links"
        data = {
            "label": "For Ann",
            "max_uses": "2",
            "expires_in_days": "3",
            "prefill_name": "Ann",
            "prefill_email": "ann@example.com",
        }
        assert form_post(logged_in, path, data).status_code == 302
        with app.app_context():
            link = db.session.scalar(sa.select(OneTimeLink))
            assert (link.label, link.max_uses, link.prefill_name, link.source) == (
                "For Ann",
                2,
                "Ann",
                "dashboard",
            )
            assert link.expires_at is not None

    @pytest.mark.parametrize(
        ("field", "value"),
        [("max_uses", "0"), ("max_uses", "1001"), ("expires_in_days", "-1"), ("prefill_email", "x@")],
    )
    def test_invalid_link_form_answers_400(self, app, logged_in, calendar, field, value):
        path = f"/dashboard/calendars/{calendar.id}/links"
        response = form_post(logged_in, path, {"label": "L", "max_uses": "1", field: value})
        assert response.status_code == 400
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count(OneTimeLink.id))) == 0

    def test_list_filters_by_status_and_revoke_expires_the_url(self, app, logged_in, calendar):
        self.make_links(logged_in, calendar, 2)
        with app.app_context():
            link_id = db.session.scalars(sa.select(OneTimeLink.id)).first()
        links_page = f"/dashboard/calendars/{calendar.id}/links"
        html = logged_in.get(links_page).get_data(as_text=True)
        url = re.search(rf'id="url-{link_id}" readonly value="([^"]+)"', html).group(1)
        assert (
            form_post(logged_in, f"/dashboard/links/{link_id}/revoke", {}, page=links_page).status_code == 302
        )
        revoked = logged_in.get(f"{links_page}?status=revoked").get_data(as_text=True)
        active = logged_in.get(f"{links_page}?status=active").get_data(as_text=True)
        assert f'data-link-id="{link_id}"' in revoked and f'data-link-id="{link_id}"' not in active
        assert logged_in.get(urlsplit(url).path).status_code == 410

    def test_used_link_shows_who_booked(self, logged_in, calendar):
        self.make_links(logged_in, calendar, 1)
        html = logged_in.get(f"/dashboard/calendars/{calendar.id}/links").get_data(as_text=True)
        path = urlsplit(
            re.search(r'class="link-url" id="url-\d+" readonly value="([^"]+)"', html).group(1)
        ).path
        page = BookingPage.parse(logged_in.get(path).get_data(as_text=True))
        logged_in.post(path, data=page.form(name="Bea Booker"))
        used = logged_in.get(f"/dashboard/calendars/{calendar.id}/links?status=used").get_data(as_text=True)
        assert "Bea Booker" in used and "badge-used" in used

    def test_csv_export_lists_every_link_safely(self, logged_in, calendar):
        path = f"/dashboard/calendars/{calendar.id}/links"
        form_post(logged_in, path, {"label": '=HYPERLINK("x")', "max_uses": "1"})
        response = logged_in.get(f"/dashboard/calendars/{calendar.id}/links.csv")
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert response.mimetype == "text/csv"
        assert (
            rows[0]["label"].startswith("'=")
            and rows[0]["status"] == "active"
            and rows[0]["url"].startswith("http")
        )

    def test_owner_cancels_a_booking_and_the_link_stays_used(self, app, logged_in, calendar):
        self.make_links(logged_in, calendar, 1)
        html = logged_in.get(f"/dashboard/calendars/{calendar.id}/links").get_data(as_text=True)
        path = urlsplit(
            re.search(r'class="link-url" id="url-\d+" readonly value="([^"]+)"', html).group(1)
        ).path
        page = BookingPage.parse(logged_in.get(path).get_data(as_text=True))
        logged_in.post(path, data=page.form(name="Cal Cancel"))
        bookings_page = f"/dashboard/calendars/{calendar.id}/bookings"
        assert "Cal Cancel" in logged_in.get(bookings_page).get_data(as_text=True)
        with app.app_context():
            booking_id = db.session.scalar(sa.select(Booking.id))
        assert (
            form_post(
                logged_in,
                f"/dashboard/bookings/{booking_id}/cancel",
                {"message": "Sorry"},
                page=bookings_page,
            ).status_code
            == 302
        )
        with app.app_context():
            booking = db.session.get(Booking, booking_id)
            assert booking.cancelled_at is not None and booking.link.uses == 1
        assert logged_in.get(path).status_code == 410
        assert page.slots[0] in BookingPage.parse(logged_in.get("/c/intro").get_data(as_text=True)).slots


class TestProfile:
    def test_profile_sets_what_the_expired_page_shows(self, app, logged_in, owner):
        data = {
            "name": "Olga O.",
            "email": "olga@example.com",
            "phone": "+1 555 0101",
            "show_name": "y",
            "expired_message": "Call us.",
        }
        assert form_post(logged_in, "/dashboard/profile", data).status_code == 302
        with app.app_context():
            saved = db.session.get(Owner, owner.id)
            assert (saved.show_name, saved.show_email, saved.show_phone) == (True, False, False)
            assert saved.expired_message == "Call us." and saved.phone == "+1 555 0101"

    def test_profile_refuses_another_owners_email(self, app, logged_in):
        with app.app_context():
            owners.create_owner("taken@example.com", "T", PASSWORD)
        response = form_post(logged_in, "/dashboard/profile", {"name": "O", "email": "taken@example.com"})
        assert response.status_code == 400


class TestOwnerIsolation:
    @pytest.fixture
    def strangers_objects(self, app):
        """A second owner's calendar, link and booking."""
        with app.app_context():
            stranger = owners.create_owner("stranger@example.com", "Stranger", PASSWORD)
            calendar = Calendar(
                owner_id=stranger.id, name="Theirs", slug="theirs", weekly_hours=ALL_DAY, min_notice_minutes=0
            )
            db.session.add(calendar)
            db.session.flush()
            link = OneTimeLink(calendar_id=calendar.id, nonce="00" * 16, key_id="x", token_hash="h" * 64)
            db.session.add(link)
            db.session.flush()
            now = utcnow()
            booking = Booking(
                calendar_id=calendar.id,
                link_id=link.id,
                start_at=now,
                end_at=now + timedelta(minutes=30),
                blocked_until=now + timedelta(minutes=30),
                invitee_name="I",
                invitee_email="i@example.com",
                invitee_timezone="UTC",
            )
            db.session.add(booking)
            db.session.commit()
            return calendar.id, link.id, booking.id

    def test_another_owners_objects_answer_404_everywhere(self, app, logged_in, strangers_objects):
        calendar_id, link_id, booking_id = strangers_objects
        page = logged_in.get("/dashboard/").get_data(as_text=True)
        token = csrf_of(page)
        gets = [
            f"/dashboard/calendars/{calendar_id}/edit",
            f"/dashboard/calendars/{calendar_id}/share",
            f"/dashboard/calendars/{calendar_id}/links",
            f"/dashboard/calendars/{calendar_id}/links.csv",
            f"/dashboard/calendars/{calendar_id}/bookings",
            f"/dashboard/calendars/{calendar_id}/delete",
        ]
        posts = [
            f"/dashboard/calendars/{calendar_id}/edit",
            f"/dashboard/calendars/{calendar_id}/delete",
            f"/dashboard/calendars/{calendar_id}/share/generate",
            f"/dashboard/calendars/{calendar_id}/links",
            f"/dashboard/links/{link_id}/revoke",
            f"/dashboard/bookings/{booking_id}/cancel",
        ]
        for path in gets:
            assert logged_in.get(path).status_code == 404, path
        for path in posts:
            assert logged_in.post(path, data={"csrf_token": token}).status_code == 404, path
        assert "Theirs" not in page
        with app.app_context():
            assert db.session.get(OneTimeLink, link_id).revoked_at is None
            assert db.session.get(Booking, booking_id).cancelled_at is None
            assert db.session.get(Calendar, calendar_id) is not None

    def test_dashboard_pages_refuse_to_be_framed(self, logged_in):
        response = logged_in.get("/dashboard/")
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert response.headers["X-Frame-Options"] == "DENY"


class TestIntegrations:
    def test_api_key_is_shown_once_and_works_until_revoked(self, app, logged_in):
        created = form_post(
            logged_in, "/dashboard/api-keys", {"key-name": "Zapier"}, page="/dashboard/integrations"
        )
        response = logged_in.get(created.headers["Location"])
        html = response.get_data(as_text=True)
        raw = re.search(r'id="new-key" type="text" readonly value="([^"]+)"', html).group(1)
        assert response.status_code == 200 and raw.startswith("oc_")
        assert raw not in logged_in.get("/dashboard/integrations").get_data(as_text=True)
        api = app.test_client()
        assert api.get("/api/v1/calendars", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
        with app.app_context():
            key_id = db.session.scalar(sa.select(sa.text("id")).select_from(sa.table("api_keys")))
        form_post(logged_in, f"/dashboard/api-keys/{key_id}/revoke", {}, page="/dashboard/integrations")
        assert api.get("/api/v1/calendars", headers={"Authorization": f"Bearer {raw}"}).status_code == 401

    def test_created_api_key_redirects_to_a_cleared_form_so_a_reload_makes_no_second_key(
        self, app, logged_in
    ):
        response = form_post(
            logged_in, "/dashboard/api-keys", {"key-name": "Zapier"}, page="/dashboard/integrations"
        )
        assert response.status_code == 303
        assert response.headers["Location"] == "/dashboard/integrations"
        shown = logged_in.get("/dashboard/integrations").get_data(as_text=True)
        assert re.search(r'id="new-key" type="text" readonly value="oc_[^"]+"', shown)
        assert re.search(r'<input[^>]*name="key-name"[^>]*>', shown)
        assert not re.search(r'<input(?=[^>]*name="key-name")[^>]*value="[^"]', shown)
        assert 'id="new-key"' not in logged_in.get("/dashboard/integrations").get_data(as_text=True)
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(sa.table("api_keys"))) == 1

    def test_added_webhook_redirects_to_a_cleared_form_showing_the_secret_once(self, app, logged_in):
        app.config["WEBHOOK_ALLOW_PRIVATE"] = 1
        response = form_post(
            logged_in,
            "/dashboard/webhooks",
            {"hook-url": "http://127.0.0.1:9/hook"},
            page="/dashboard/integrations",
        )
        assert response.status_code == 303
        shown = logged_in.get(response.headers["Location"]).get_data(as_text=True)
        assert re.search(r'id="new-secret" type="text" readonly value="whsec_[^"]+"', shown)
        assert not re.search(r'<input(?=[^>]*name="hook-url")[^>]*value="[^"]', shown)
        assert 'id="new-secret"' not in logged_in.get("/dashboard/integrations").get_data(as_text=True)

    def test_webhook_endpoint_refuses_private_targets_by_default(self, logged_in):
        response = form_post(
            logged_in,
            "/dashboard/webhooks",
            {"hook-url": "http://127.0.0.1:9/hook"},
            page="/dashboard/integrations",
        )
        assert response.status_code == 400
        assert "private or loopback" in response.get_data(as_text=True)

    def test_webhook_secret_is_shown_on_create_and_rotate(self, app, logged_in):
        app.config["WEBHOOK_ALLOW_PRIVATE"] = 1
        created = form_post(
            logged_in,
            "/dashboard/webhooks",
            {"hook-url": "http://127.0.0.1:9/hook"},
            page="/dashboard/integrations",
        )
        first = re.search(
            r'id="new-secret" type="text" readonly value="([^"]+)"',
            logged_in.get(created.headers["Location"]).get_data(as_text=True),
        ).group(1)
        with app.app_context():
            endpoint_id = db.session.scalar(
                sa.select(sa.text("id")).select_from(sa.table("webhook_endpoints"))
            )
        rotated = form_post(
            logged_in, f"/dashboard/webhooks/{endpoint_id}/rotate", {}, page="/dashboard/integrations"
        )
        second = re.search(
            r'id="new-secret" type="text" readonly value="([^"]+)"',
            logged_in.get(rotated.headers["Location"]).get_data(as_text=True),
        ).group(1)
        assert first.startswith("whsec_") and second.startswith("whsec_") and first != second

    def test_another_owners_keys_and_endpoints_answer_404(self, app, logged_in):
        with app.app_context():
            from oncecal.app_objects import runtime
            from oncecal.services import apikeys, webhooks

            stranger = owners.create_owner("s2@example.com", "S", PASSWORD)
            key, _ = apikeys.create_api_key(stranger, "theirs", utcnow())
            endpoint, _ = webhooks.create_endpoint(
                stranger, "http://127.0.0.1:9/x", runtime().link_keys, utcnow(), allow_private=True
            )
            key_id, endpoint_id = key.id, endpoint.id
        token = csrf_of(logged_in.get("/dashboard/integrations").get_data(as_text=True))
        for path in (
            f"/dashboard/api-keys/{key_id}/revoke",
            f"/dashboard/webhooks/{endpoint_id}/rotate",
            f"/dashboard/webhooks/{endpoint_id}/delete",
        ):
            assert logged_in.post(path, data={"csrf_token": token}).status_code == 404, path
