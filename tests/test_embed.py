"""The embed contract over HTTP: the loader script, framing headers and the embed code."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from oncecal.embed import embed_code
from oncecal.extensions import db
from oncecal.models import Calendar, utcnow
from oncecal.services import bookings
from oncecal.services.bookings import Invitee
from oncecal.urls import link_url
from tests.conftest import MakeCalendar, MakeLink
from tests.support.apps import make_test_app
from tests.support.pages import BookingPage

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = ["https://shop.example", "http://example.test"]
ANCESTORS = "'self' https://shop.example http://example.test"

pytestmark = pytest.mark.usefixtures("ctx")


def directive(response: TestResponse, wanted: str) -> str | None:
    """Return a directive of the response's CSP, or None without one."""
    for part in response.headers.get("Content-Security-Policy", "").split(";"):
        name, _, value = part.strip().partition(" ")
        if name == wanted:
            return value.strip()
    return None


def frame_ancestors(response: TestResponse) -> str | None:
    """Return the frame-ancestors directive of the response's CSP, or None without one."""
    return directive(response, "frame-ancestors")


class TestLoaderScript:
    def test_served_as_javascript_with_validators_and_a_cache_lifetime(self, client: FlaskClient) -> None:
        with client.get("/widget/embed.js") as response:
            assert response.status_code == 200
            assert response.mimetype == "text/javascript"
            assert response.get_data() == (ROOT / "widget" / "embed.js").read_bytes()
            assert response.headers["ETag"]
            max_age = re.search(r"\bmax-age=(\d+)", response.headers["Cache-Control"])
            assert max_age is not None and int(max_age.group(1)) > 0

    def test_answers_304_to_its_own_etag(self, client: FlaskClient) -> None:
        with client.get("/widget/embed.js") as first:
            etag = first.headers["ETag"]
        with client.get("/widget/embed.js", headers={"If-None-Match": etag}) as response:
            assert response.status_code == 304
            assert response.get_data() == b""
            assert response.headers["ETag"] == etag

    def test_another_etag_gets_the_script(self, client: FlaskClient) -> None:
        with client.get("/widget/embed.js", headers={"If-None-Match": '"not-this-one"'}) as response:
            assert response.status_code == 200
            assert response.get_data()


def booked_ref(calendar: Calendar) -> str:
    """Book the calendar's first open slot and return the booking's reference."""
    now = utcnow()
    start = bookings.open_slots(calendar, now)[0]
    invitee = Invitee(name="Ivy Invitee", email="ivy@example.com", timezone="UTC")
    return bookings.book_calendar(calendar.id, start, invitee, form_id=None, now=now).ref


def used_link_path(calendar: Calendar, make_link: MakeLink, client: FlaskClient) -> str:
    """Return the path of a link of ``calendar`` that has been booked through."""
    _, token = make_link(calendar)
    page = BookingPage.parse(client.get(f"/l/{token}").get_data(as_text=True))
    assert client.post(f"/l/{token}", data=page.form()).status_code == 303
    return f"/l/{token}"


def booking_paths(calendar: Calendar, make_link: MakeLink, client: FlaskClient) -> dict[str, str]:
    """Return the framable pages of a calendar, by name."""
    _, token = make_link(calendar)
    return {
        "one-time link": f"/l/{token}",
        "used link (410)": used_link_path(calendar, make_link, client),
        "calendar page": f"/c/{calendar.slug}",
        "permanent page": f"/p/{calendar.key}",
        "confirmation": f"/b/{booked_ref(calendar)}",
    }


class TestFramingOfBookingPages:
    def test_any_site_may_frame_them_by_default(
        self, client: FlaskClient, make_calendar: MakeCalendar, make_link: MakeLink
    ) -> None:
        for name, path in booking_paths(make_calendar(), make_link, client).items():
            for query in ("", "?embed=1&host=https://anyone.example"):
                response = client.get(path + query)
                assert response.status_code in (200, 410), (name, response.status_code)
                assert frame_ancestors(response) is None, name
                assert "X-Frame-Options" not in response.headers, name

    def test_a_calendar_with_origins_may_be_framed_only_by_them(
        self, client: FlaskClient, make_calendar: MakeCalendar, make_link: MakeLink
    ) -> None:
        calendar = make_calendar(embed_origins=ALLOWED)
        for name, path in booking_paths(calendar, make_link, client).items():
            for query in ("", "?embed=1&host=https://shop.example", "?embed=1&host=HTTP://Example.TEST"):
                response = client.get(path + query)
                assert response.status_code in (200, 410), (name, query, response.status_code)
                assert frame_ancestors(response) == ANCESTORS, (name, query)
                assert "X-Frame-Options" not in response.headers, name

    @pytest.mark.parametrize(
        "host",
        ["https://evil.example", "http://shop.example", "https://shop.example:8443", "http://localhost:5000"],
    )
    def test_a_host_outside_the_list_answers_403(
        self, client: FlaskClient, make_calendar: MakeCalendar, make_link: MakeLink, host: str
    ) -> None:
        calendar = make_calendar(embed_origins=ALLOWED)
        for name, path in booking_paths(calendar, make_link, client).items():
            response = client.get(f"{path}?embed=1&host={host}")
            assert response.status_code == 403, (name, response.status_code)
            assert frame_ancestors(response) == ANCESTORS, name
            assert "has not allowed it to be embedded on" in response.get_data(as_text=True)

    def test_a_post_from_a_host_outside_the_list_books_nothing(
        self, client: FlaskClient, make_calendar: MakeCalendar, make_link: MakeLink
    ) -> None:
        link, token = make_link(make_calendar(embed_origins=ALLOWED))
        page = BookingPage.parse(client.get(f"/l/{token}").get_data(as_text=True))
        response = client.post(f"/l/{token}?embed=1&host=https://evil.example", data=page.form())
        assert response.status_code == 403
        db.session.refresh(link)
        assert link.uses == 0

    def test_clearing_the_list_lets_any_site_frame_again(
        self, client: FlaskClient, make_calendar: MakeCalendar, make_link: MakeLink
    ) -> None:
        calendar = make_calendar(embed_origins=ALLOWED)
        _, token = make_link(calendar)
        assert client.get(f"/l/{token}?host=https://evil.example").status_code == 403
        calendar.embed_origins = []
        db.session.commit()
        response = client.get(f"/l/{token}?host=https://evil.example")
        assert response.status_code == 200
        assert frame_ancestors(response) is None


@pytest.mark.parametrize("path", ["/healthz", "/no/such/page", "/dashboard/", "/widget/embed.js"])
def test_other_pages_may_never_be_framed(client: FlaskClient, path: str) -> None:
    with client.get(path) as response:
        assert frame_ancestors(response) == "'none'"
        assert response.headers["X-Frame-Options"] == "DENY"


class TestStylesheetOfFramedPages:
    """A page in a frame carries app.css inline (Chromium lays out a cross-site frame before a
    linked stylesheet is in and counts the restyle as layout shift); its policy allows that text only."""

    def test_a_framed_page_carries_the_stylesheet_its_policy_names(
        self, client: FlaskClient, make_calendar: MakeCalendar, make_link: MakeLink
    ) -> None:
        css = (ROOT / "static" / "app.css").read_text(encoding="utf-8")
        digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
        for name, path in booking_paths(make_calendar(), make_link, client).items():
            response = client.get(f"{path}?embed=1&host=https://anyone.example")
            page = response.get_data(as_text=True)
            assert re.findall(r"<style>(.*?)</style>", page, re.DOTALL) == [css], name
            assert 'rel="stylesheet"' not in page, name
            assert directive(response, "style-src") == f"'self' 'sha256-{digest}'", name
            assert "unsafe-inline" not in response.headers["Content-Security-Policy"], name

    def test_a_page_outside_a_frame_links_the_stylesheet(
        self, client: FlaskClient, make_calendar: MakeCalendar, make_link: MakeLink
    ) -> None:
        for name, path in booking_paths(make_calendar(), make_link, client).items():
            page = client.get(path).get_data(as_text=True)
            assert '<link rel="stylesheet" href="/static/app.css">' in page, name
            assert "<style>" not in page, name
        assert directive(client.get("/login"), "style-src") == "'self'"


class Elements(HTMLParser):
    """Collect (tag, attributes) and the text of a snippet."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text += data


@pytest.fixture
def snippet_app(tmp_path: Path) -> Flask:
    return make_test_app(f"sqlite:///{tmp_path / 'snippets.sqlite3'}", BASE_URL="https://book.example.com/")


def test_embed_code_uses_absolute_urls_from_base_url(snippet_app: Flask) -> None:
    with snippet_app.app_context():
        url = link_url("T0ken-abc_123")
        code = embed_code(url)
    script = ("script", {"src": "https://book.example.com/widget/embed.js", "async": None})
    assert url == "https://book.example.com/l/T0ken-abc_123"
    # The reserved height keeps the host page still while the frame loads (widget/README.md).
    inline = {"class": "oncecal-inline", "data-url": url, "style": "min-height:720px"}
    assert Elements(code.inline).tags == [("div", inline), script]
    popup = Elements(code.popup)
    assert popup.tags == [("button", {"type": "button", "data-oncecal-popup": url}), script]
    assert popup.text.strip() == "Book a time"


def test_embed_code_escapes_the_url_and_the_label(snippet_app: Flask) -> None:
    url = 'https://book.example.com/l/x?a=1&b="><script>alert(1)</script>'
    label = "<b>Book</b> & 'go'"
    with snippet_app.app_context():
        code = embed_code(url, label=label)
    for snippet in (code.inline, code.popup):
        assert "<script>alert" not in snippet
        assert 'b="' not in snippet
    assert Elements(code.inline).tags[0][1]["data-url"] == url
    popup = Elements(code.popup)
    assert popup.tags[0][1]["data-oncecal-popup"] == url
    assert [tag for tag, _ in popup.tags] == ["button", "script"]
    assert popup.text.strip() == label
