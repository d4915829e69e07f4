"""Save screenshots of OnceCal's pages in Debian's Chromium: light and dark, desktop and phone.

Usage: .venv/bin/python scripts/screenshots.py pages|dashboard|embed|all [OUTDIR] [--docs] [--only REGEX]

  pages      every invitee page: OUTDIR/<page>-<desktop|phone>-<light|dark>.png
  dashboard  every owner page: OUTDIR/<page>-<desktop|phone>-<light|dark>.png
  embed      the widget on the demo host page, opened at http://localhost:<port>
             while the app answers on 127.0.0.1:<port> (another site), each shot
             once its frame has settled: OUTDIR/embed-*.png, the viewport only
  all        the three

Starts the real app on a throwaway SQLite file, seeds it once (seed(): the
owner signs up through the browser, the rest is written behind its back) and
drives each page. --only keeps the shots whose name matches REGEX. --docs also
refreshes what docs/screenshots/ holds: the invitee pages the accessibility
work is judged on (booking, manage, reschedule, cancelled, expired) at 320 px
in both themes and on a desktop in the dark theme; the Share dialog's One Time
Link tab the README shows (share-dialog.png, 1280x800, light), the Connections
page and a calendar's connected-calendar choices (connections.png,
calendar-sources.png: 1280 wide, light, full page); the widget
inline, in its popup and dark (embed-inline.png, embed-popup.png, embed-dark.png).
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from oncecal.app_objects import runtime  # noqa: E402
from oncecal.demo import DEMO_CALENDAR, DEMO_EXPIRED_MESSAGE  # noqa: E402
from oncecal.extensions import db  # noqa: E402
from oncecal.models import Calendar, Owner, utcnow  # noqa: E402
from oncecal.services import bookings, changes, connections, links, owners  # noqa: E402
from oncecal.services.bookings import Invitee  # noqa: E402
from oncecal.worker import run_worker  # noqa: E402
from tests.support.embedding import RECORDER, demo_host, wait_for_event, wait_until_fits  # noqa: E402
from tests.support.httpstub import HTTPStub  # noqa: E402
from tests.support.live import CHROMIUM, CHROMIUM_ARGS, LiveServer, live_server  # noqa: E402
from tests.support.radicale import RadicaleServer, put_event, sample_event  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

DOCS = ROOT / "docs" / "screenshots"
THEMES = ("light", "dark")
# Long enough to show whether names, emails and zones wrap on a phone.
LONG_NAME = "Maximiliana Alexandra Featherstonehaugh-Wolfeschlegelsteinhausen"
LONG_EMAIL = "maximiliana.featherstonehaugh@a-really-quite-long-company-name.example.com"
LONG_CALENDAR = "Quarterly architecture review and roadmap planning session"
# The owner who signs up through the browser, whose dashboard the shots show.
EMAIL = "dana@example.com"
PASSWORD = "correct horse battery"
WORKDAYS = {str(d): [["09:00", "12:00"], ["13:00", "17:00"]] for d in range(5)}


# -------------------------------------------------------------------- seed


@dataclass
class Demo:
    """What seed() made.

    Two owners: the invitee pages and the widget show the demo calendar as
    `flask demo` makes it (and one with very long names); the dashboard shows
    an owner who signed up through the browser, with calendars, links of every
    status and bookings.
    """

    server: LiveServer
    calendar_id: int
    long_calendar_id: int
    storage: dict[str, Any]  # the signed-up owner's logged-in browser state
    dashboard_calendar_id: int
    dashboard_long_calendar_id: int
    dashboard_empty_calendar_id: int

    def url(self, path: str) -> str:
        return f"{self.server.url}{path}"

    def link(self, calendar_id: int | None = None) -> str:
        """Return the URL of a fresh one-time link."""
        with self.server.app.app_context():
            calendar = db.session.get_one(Calendar, calendar_id or self.calendar_id)
            _link, token = links.issue_link(calendar, runtime().link_keys, now=utcnow())
        return f"{self.server.url}/l/{token}"

    def take(self, slot: str) -> None:
        """Book a slot behind the invitee's back."""
        start = datetime.fromisoformat(slot)
        with self.server.app.app_context():
            who = Invitee(name="Someone Else", email="else@example.com", timezone="UTC")
            bookings.book_calendar(self.calendar_id, start, who, form_id=None, now=utcnow())


def seed_connections(owner: Owner, calendar: Calendar, radicale: RadicaleServer, stub: HTTPStub) -> None:
    """A CalDAV account with two calendars (one busy appointment) and a feed whose last read failed."""
    radicale.add_user("dana", "app-password-1234")
    work = radicale.make_calendar("dana", "app-password-1234", "work", "Work")
    radicale.make_calendar("dana", "app-password-1234", "family", "Family")
    start = (utcnow() + timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
    put_event(
        work,
        "dentist",
        sample_event("dentist", summary="Dentist", start=start, minutes=60),
        ("dana", "app-password-1234"),
    )
    account = connections.add_caldav(owner, radicale.url, "dana", "app-password-1234", utcnow())
    feed_url = stub.route("/calendar/ical/secret-address/basic.ics", FEED)
    feed = connections.add_feed(owner, feed_url, utcnow())
    stub.route("/calendar/ical/secret-address/basic.ics", b"Service unavailable", status=503)
    connections.sync_source(feed.calendars[0].id)
    work_id, family_id = (source.id for source in account.calendars)
    connections.connect_calendar(calendar, [work_id, family_id, feed.calendars[0].id], work_id)


FEED = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n"
    b"X-WR-CALNAME:Holidays in Germany\r\nX-WR-TIMEZONE:Europe/Berlin\r\nEND:VCALENDAR\r\n"
)


def seed(server: LiveServer, browser: Browser, radicale: RadicaleServer, stub: HTTPStub) -> Demo:
    """Add everything the shots show: both owners, their calendars, links and bookings, connections."""
    storage = sign_up(browser, server)
    with server.app.app_context():
        keys = runtime().link_keys
        # The invitee side: the demo owner's calendar and one with very long names.
        demo_owner = Owner(
            email="dana@oncecal.test",
            name="Dana Demo",
            phone="+1 555 0100",
            password_hash="not-a-real-hash",
            expired_message=DEMO_EXPIRED_MESSAGE,
        )
        # The signed-up owner's "Intro call" holds the slug: no invitee page shows it.
        demo_calendar = Calendar(owner=demo_owner, **{**DEMO_CALENDAR, "slug": "demo-intro-call"})
        long_owner = Owner(email=LONG_EMAIL, name=LONG_NAME, password_hash="not-a-real-hash")
        long_calendar = Calendar(
            owner=long_owner,
            name=LONG_CALENDAR,
            slug="long",
            duration_minutes=90,
            timezone="America/Argentina/ComodRivadavia",
            min_notice_minutes=0,
            location="https://meet.example.com/a-very-long-meeting-room-identifier-without-breaks-0123456789",
            weekly_hours={str(d): [["08:00", "20:00"]] for d in range(7)},
        )
        db.session.add_all([demo_owner, demo_calendar, long_owner, long_calendar])
        db.session.commit()

        # The dashboard side: more calendars, links of every status and bookings.
        owner = owners.owner_by_email(EMAIL)
        assert owner is not None
        owner.phone = "+49 30 1234567"
        calendar = db.session.scalars(db.select(Calendar).where(Calendar.owner_id == owner.id)).one()
        calendar.location = "Video call (the link comes with your confirmation)"
        calendar.weekly_hours = {str(d): [["00:00", "24:00"]] for d in range(7)}
        calendar.min_notice_minutes = 0
        owner_long_calendar = Calendar(
            owner=owner,
            name=LONG_CALENDAR,
            slug="quarterly-architecture-review-and-roadmap-planning-session",
            duration_minutes=90,
            timezone="America/Argentina/ComodRivadavia",
            weekly_hours=WORKDAYS,
        )
        empty_calendar = Calendar(
            owner=owner,
            name="Office hours",
            slug="office-hours",
            duration_minutes=15,
            timezone="UTC",
            public_page_enabled=False,
            weekly_hours=WORKDAYS,
        )
        db.session.add_all([owner_long_calendar, empty_calendar])
        db.session.commit()

        now = utcnow()
        made = links.issue_link
        made(
            calendar,
            keys,
            now=now - timedelta(days=20),
            label="Old offer",
            expires_at=now - timedelta(days=1),
        )
        revoked, _ = made(calendar, keys, now=now - timedelta(days=6), label="Sent to the wrong person")
        links.revoke_link(revoked.id, now - timedelta(days=5))
        past, _ = made(calendar, keys, now=now - timedelta(days=9), label="Jonas Becker")
        day = (now - timedelta(days=8)).replace(hour=10, minute=0, second=0, microsecond=0)
        links.consume_link_and_book(
            past.id,
            day,
            Invitee("Jonas Becker", "jonas@example.com", "Europe/Berlin"),
            form_id=None,
            now=now - timedelta(days=9),
        )
        used, _ = made(calendar, keys, now=now - timedelta(days=2), label="Ivy Invitee")
        soon = (now + timedelta(days=2)).replace(hour=9, minute=30, second=0, microsecond=0)
        links.consume_link_and_book(
            used.id,
            soon,
            Invitee("Ivy Invitee", "ivy@example.com", "Europe/Berlin", "About the spring launch"),
            form_id=None,
            now=now,
        )
        # Its confirmations meet a mail server that is down: the deliveries list shows it.
        server.app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"
        run_worker(server.app, once=True)
        server.app.config["SMTP_URL"] = None
        cancelled, _ = made(calendar, keys, now=now - timedelta(days=1))
        booking = links.consume_link_and_book(
            cancelled.id,
            soon + timedelta(days=1),
            Invitee("Sam Cancelled", "sam@example.com", "UTC"),
            form_id=None,
            now=now,
        )
        changes.cancel_booking(booking.id, now, by="owner")
        bookings.book_calendar(
            calendar.id,
            soon + timedelta(days=2, hours=3),
            Invitee(
                "Maximiliana Alexandra Featherstonehaugh",
                "maximiliana@a-really-long-company.example.com",
                "America/New_York",
            ),
            form_id=None,
            now=now,
        )
        made(
            calendar,
            keys,
            now=now,
            label="Lead from the fair: Ana",
            max_uses=3,
            expires_at=now + timedelta(days=7),
            prefill_name="Ana",
            prefill_email="ana@example.com",
            source="dashboard",
        )
        made(calendar, keys, now=now, source="share")
        seed_connections(owner, calendar, radicale, stub)
        return Demo(
            server,
            calendar_id=demo_calendar.id,
            long_calendar_id=long_calendar.id,
            storage=storage,
            dashboard_calendar_id=calendar.id,
            dashboard_long_calendar_id=owner_long_calendar.id,
            dashboard_empty_calendar_id=empty_calendar.id,
        )


def sign_up(browser: Browser, server: LiveServer) -> dict[str, Any]:
    """Sign the owner up through the page and return the logged-in browser state."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server.url}/signup")
    page.get_by_label("Your name").fill("Dana Demo")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="New calendar")).to_be_visible()
    # The first calendar through the form, like a new owner would.
    page.get_by_label("Name", exact=True).fill("Intro call")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    for day in ("Saturday", "Sunday"):
        page.get_by_label(day).fill("10:00-14:00")
    page.get_by_label("Minimum notice (minutes)").fill("60")
    page.get_by_role("button", name="Create calendar").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    state = context.storage_state()
    context.close()
    return dict(state)


def wanted(name: str, only: str | None) -> bool:
    return only is None or re.search(only, name) is not None


def save(page: Page, paths: list[Path], *, full_page: bool) -> list[Path]:
    """Take one screenshot into the first path and copy it to the others."""
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=paths[0], full_page=full_page)
    for path in paths[1:]:
        shutil.copyfile(paths[0], path)
    return paths


# ------------------------------------------------------------------- pages

PAGE_WIDTHS = {"desktop": 1280, "phone": 320}
# Shot name -> the name in docs/screenshots/, and which (device, theme) pairs go there.
DOCS_PAGES = {
    "booking": "booking",
    "confirmation": "manage",
    "reschedule": "reschedule",
    "cancelled": "cancelled",
    "410-expired": "expired",
}
DOCS_VARIANTS = (("phone", "light"), ("phone", "dark"), ("desktop", "dark"))


def themed(url: str, theme: str) -> str:
    return url if theme == "light" else f"{url}{'&' if '?' in url else '?'}theme={theme}"


def choose_second_day_slot(page: Page) -> str:
    label = page.locator(".day:has(label.slot)").nth(1).locator("label.slot").first
    label.click()
    return label.get_attribute("data-start") or ""


def fill_details(page: Page, name: str = "Ivy Invitee", email: str = "ivy@example.com") -> None:
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)


def booking_page(demo: Demo, page: Page, theme: str) -> None:
    page.goto(themed(demo.link(), theme))
    choose_second_day_slot(page)
    # Move on by keyboard, so the shot shows the focus ring of a slot.
    page.keyboard.press("ArrowRight")


def booking_long(demo: Demo, page: Page, theme: str) -> None:
    page.goto(themed(f"{demo.link(demo.long_calendar_id)}?tz=America/Argentina/ComodRivadavia", theme))


def booking_embedded(demo: Demo, page: Page, theme: str) -> None:
    page.goto(themed(f"{demo.link()}?embed=1", theme))


def field_errors(demo: Demo, page: Page, theme: str) -> None:
    page.goto(themed(demo.link(), theme))
    # Skip the browser's own checks of the required fields, as a script-less client would.
    with page.expect_navigation():
        page.locator("form.booking-form").evaluate("form => form.submit()")
    assert page.locator(".field-error").count() >= 3


def slot_taken(demo: Demo, page: Page, theme: str) -> None:
    page.goto(themed(demo.link(), theme))
    slot = choose_second_day_slot(page)
    fill_details(page)
    demo.take(slot)
    page.get_by_role("button", name="Confirm booking").click()
    page.locator(".alert").wait_for()


def confirmation(demo: Demo, page: Page, theme: str) -> None:
    page.goto(themed(demo.link(), theme))
    choose_second_day_slot(page)
    fill_details(page, LONG_NAME, LONG_EMAIL)
    page.get_by_role("button", name="Confirm booking").click()
    page.locator("[data-oncecal-state=booked]").wait_for()


def reschedule(demo: Demo, page: Page, theme: str) -> None:
    confirmation(demo, page, theme)
    page.get_by_role("link", name="Reschedule").click()
    page.locator(".moving-note").wait_for()


def cancelled(demo: Demo, page: Page, theme: str) -> None:
    confirmation(demo, page, theme)
    page.get_by_text("Cancel this booking").click()
    page.get_by_label("Reason").fill("Something came up, sorry.")
    page.get_by_role("button", name="Cancel booking").click()
    page.locator("[data-oncecal-state=cancelled]").wait_for()


def expired(demo: Demo, page: Page, theme: str) -> None:
    url = themed(demo.link(), theme)
    page.goto(url)
    choose_second_day_slot(page)
    fill_details(page)
    page.get_by_role("button", name="Confirm booking").click()
    page.locator("[data-oncecal-state=booked]").wait_for()
    response = page.goto(url)
    assert response is not None and response.status == 410


def expired_long(demo: Demo, page: Page, theme: str) -> None:
    url = themed(demo.link(demo.long_calendar_id), theme)
    page.goto(url)
    choose_second_day_slot(page)
    fill_details(page)
    page.get_by_role("button", name="Confirm booking").click()
    page.locator("[data-oncecal-state=booked]").wait_for()
    page.goto(url)


def not_found(demo: Demo, page: Page, theme: str) -> None:
    response = page.goto(themed(f"{demo.server.url}/l/no-such-link", theme))
    assert response is not None and response.status == 404


PAGE_SHOTS: dict[str, Callable[[Demo, Page, str], None]] = {
    "booking": booking_page,
    "booking-long": booking_long,
    "booking-embed": booking_embedded,
    "400-field-errors": field_errors,
    "409-slot-taken": slot_taken,
    "confirmation": confirmation,
    "reschedule": reschedule,
    "cancelled": cancelled,
    "410-expired": expired,
    "410-expired-long": expired_long,
    "404": not_found,
}


def shoot_pages(
    browser: Browser, demo: Demo, outdir: Path | None, *, docs: bool, only: str | None
) -> list[Path]:
    saved = []
    for name, visit in PAGE_SHOTS.items():
        if not wanted(name, only):
            continue
        for device, width in PAGE_WIDTHS.items():
            for theme in THEMES:
                paths = [outdir / f"{name}-{device}-{theme}.png"] if outdir else []
                if docs and name in DOCS_PAGES and (device, theme) in DOCS_VARIANTS:
                    paths.append(DOCS / f"{DOCS_PAGES[name]}-{width}-{theme}.png")
                if not paths:
                    continue
                context = browser.new_context(
                    viewport={"width": width, "height": 800 if width > 600 else 640},
                    timezone_id="Europe/Berlin",
                    color_scheme="light",
                )
                page = context.new_page()
                visit(demo, page, theme)
                saved += save(page, paths, full_page=True)
                context.close()
    return saved


# --------------------------------------------------------------- dashboard

DASHBOARD_DEVICES = {"desktop": (1280, 800), "phone": (375, 740)}


def login(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/login"))


def login_error(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/login"))
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".field-error")).to_be_visible()


def signup_errors(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/signup"))
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator(".field-error")).to_have_count(3)


def calendars(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/dashboard/"))


def calendars_menu(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/dashboard/"))
    page.get_by_label("More actions for Intro call").click()
    # Exact: "Export bookings (CSV)" is a link too.
    expect(page.get_by_role("link", name="Bookings", exact=True)).to_be_visible()


def share_tab(tab: str, calendar: str = "dashboard_calendar_id") -> Callable[[Demo, Page], None]:
    def visit(demo: Demo, page: Page) -> None:
        page.goto(demo.url(f"/dashboard/calendars/{getattr(demo, calendar)}/share?tab={tab}"))
        expect(page.get_by_role("dialog")).to_be_visible()

    return visit


def share_generated(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.dashboard_long_calendar_id}/share?tab=one-time"))
    page.get_by_role("button", name="Generate New Link").click()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("dialog").get_by_text(re.compile("Copied|Selected"))).to_be_visible()


def calendar_new(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/dashboard/calendars/new"))


def calendar_new_errors(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/dashboard/calendars/new"))
    page.get_by_label("Address (slug)").fill("Not a slug!")
    page.get_by_label("Monday").fill("9 to 5")
    page.get_by_label("Sites allowed to embed this calendar").fill("example.com/page")
    page.get_by_role("button", name="Create calendar").click()
    expect(page.locator(".alert")).to_be_visible()


def calendar_edit(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.dashboard_calendar_id}/edit"))


def links_page(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.dashboard_calendar_id}/links"))


def links_new(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.dashboard_calendar_id}/links"))
    page.get_by_text("New one-time link").click()
    page.get_by_label("Prefill email").fill("nope")
    page.get_by_role("button", name="Create link").click()
    expect(page.locator(".field-error")).to_be_visible()


def links_empty(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.dashboard_empty_calendar_id}/links?status=used"))


def bookings_page(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.dashboard_calendar_id}/bookings"))


def calendar_delete(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.dashboard_calendar_id}/delete"))


def profile(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/dashboard/profile"))


def password(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/dashboard/password"))


def integrations(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/dashboard/integrations"))


def connections_page(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/dashboard/connections"))


def connections_refused(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/dashboard/connections"))
    form = page.locator("#add-caldav")
    form.get_by_label("Server URL").fill(demo.server.app.config["SCREENSHOT_CALDAV_URL"])
    form.get_by_label("Username").fill("dana")
    form.get_by_label("Password or app password").fill("my-old-password")
    form.get_by_role("button", name="Connect account").click()
    expect(page.locator("#add-caldav .field-error")).to_be_visible()


def calendar_sources(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.dashboard_calendar_id}/connections"))


LOGGED_OUT = {"login", "login-error", "signup-errors"}
DASHBOARD_SHOTS: dict[str, Callable[[Demo, Page], None]] = {
    "login": login,
    "login-error": login_error,
    "signup-errors": signup_errors,
    "calendars": calendars,
    "calendars-menu": calendars_menu,
    "share-scheduling": share_tab("scheduling"),
    "share-permanent": share_tab("permanent"),
    "share-one-time": share_tab("one-time"),
    "share-embed": share_tab("embed"),
    "share-one-time-none": share_tab("one-time", "dashboard_empty_calendar_id"),
    "share-scheduling-off": share_tab("scheduling", "dashboard_empty_calendar_id"),
    "share-embed-off": share_tab("embed", "dashboard_empty_calendar_id"),
    "share-generated": share_generated,
    "calendar-new": calendar_new,
    "calendar-new-errors": calendar_new_errors,
    "calendar-edit": calendar_edit,
    "links": links_page,
    "links-new-errors": links_new,
    "links-empty": links_empty,
    "bookings": bookings_page,
    "calendar-delete": calendar_delete,
    "profile": profile,
    "password": password,
    "integrations": integrations,
    "connections": connections_page,
    "connections-refused": connections_refused,
    "calendar-sources": calendar_sources,
}


def shoot_dashboard(
    browser: Browser, demo: Demo, outdir: Path | None, *, docs: bool, only: str | None
) -> list[Path]:
    saved = []
    for name, visit in DASHBOARD_SHOTS.items():
        if outdir is None or not wanted(name, only):
            continue
        for device, (width, height) in DASHBOARD_DEVICES.items():
            for theme in THEMES:
                context = browser.new_context(
                    viewport={"width": width, "height": height},
                    timezone_id="Europe/Berlin",
                    storage_state=None if name in LOGGED_OUT else demo.storage,  # type: ignore[arg-type]  # a storage_state() dict
                    permissions=["clipboard-read", "clipboard-write"],
                )
                page = context.new_page()
                page.emulate_media(color_scheme=theme)  # type: ignore[arg-type]  # one of THEMES
                visit(demo, page)
                if name.startswith("share"):
                    # The dialog scrolls inside its fixed backdrop: grow the
                    # viewport to show all of it (a full-page shot would not).
                    needed = page.locator(".modal-backdrop").evaluate("e => e.scrollHeight")
                    page.set_viewport_size({"width": width, "height": max(height, needed)})
                saved += save(
                    page, [outdir / f"{name}-{device}-{theme}.png"], full_page=not name.startswith("share")
                )
                context.close()
    if docs and wanted("share-dialog", only):
        saved.append(readme_shot(browser, demo))
    if docs:
        for name in ("connections", "calendar-sources"):
            if wanted(name, only):
                saved.append(connections_shot(browser, demo, name))
    return saved


def connections_shot(browser: Browser, demo: Demo, name: str) -> Path:
    """The Connections page, or a calendar's connected-calendar choices, as the README shows them."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        timezone_id="Europe/Berlin",
        storage_state=demo.storage,  # type: ignore[arg-type]  # a storage_state() dict
    )
    page = context.new_page()
    page.emulate_media(color_scheme="light")
    DASHBOARD_SHOTS[name](demo, page)
    [path] = save(page, [DOCS / f"{name}.png"], full_page=True)
    context.close()
    return path


def readme_shot(browser: Browser, demo: Demo) -> Path:
    """The Share dialog's One Time Link tab with a link, as the README shows it."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        storage_state=demo.storage,  # type: ignore[arg-type]  # a storage_state() dict
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    page.emulate_media(color_scheme="light")
    page.goto(demo.url(f"/dashboard/calendars/{demo.dashboard_calendar_id}/share?tab=one-time"))
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("dialog").get_by_text("Copied!")).to_be_visible()
    [path] = save(page, [DOCS / "share-dialog.png"], full_page=False)
    context.close()
    return path


# ------------------------------------------------------------------- embed

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}


def token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def inline(demo: Demo, page: Page, theme: str | None = None) -> None:
    page.goto(demo_host(demo.server.url, token(demo.link()), token(demo.link()), theme))
    wait_for_event(page, "oncecal:ready", "oncecal-inline")
    wait_until_fits(page.locator(".oncecal-inline iframe"))


def inline_dark(demo: Demo, page: Page) -> None:
    inline(demo, page, theme="dark")


def popup(demo: Demo, page: Page) -> None:
    inline(demo, page)
    page.get_by_role("button", name="Book a time").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    wait_for_event(page, "oncecal:ready", "popup-button")
    wait_until_fits(page.locator("[role=dialog] iframe"))


def popup_picked(demo: Demo, page: Page) -> None:
    popup(demo, page)
    frame = page.frame_locator("[role=dialog] iframe")
    frame.locator(".day:has(label.slot)").nth(1).locator("label.slot").first.click()


def popup_booked(demo: Demo, page: Page) -> None:
    popup_picked(demo, page)
    frame = page.frame_locator("[role=dialog] iframe")
    frame.get_by_label("Your name").fill("Ivy Invitee")
    frame.get_by_label("Email").fill("ivy@example.com")
    frame.get_by_role("button", name="Confirm booking").click()
    wait_for_event(page, "oncecal:booked", "popup-button")
    wait_until_fits(page.locator("[role=dialog] iframe"))


# name: (viewport, visit, also in docs/screenshots)
EMBED_SHOTS: dict[str, tuple[dict[str, int], Callable[[Demo, Page], None], bool]] = {
    "embed-inline": (DESKTOP, inline, True),
    "embed-popup": (DESKTOP, popup, True),
    "embed-dark": (DESKTOP, inline_dark, True),
    "embed-popup-booked": (DESKTOP, popup_booked, False),
    "embed-inline-phone": (PHONE, inline, False),
    "embed-popup-phone": (PHONE, popup_picked, False),
    "embed-popup-booked-phone": (PHONE, popup_booked, False),
}


def shoot_embed(
    browser: Browser, demo: Demo, outdir: Path | None, *, docs: bool, only: str | None
) -> list[Path]:
    saved = []
    for name, (viewport, visit, published) in EMBED_SHOTS.items():
        paths = [outdir / f"{name}.png"] if outdir else []
        if docs and published:
            paths.append(DOCS / f"{name}.png")
        if not paths or not wanted(name, only):
            continue
        context = browser.new_context(viewport=viewport, timezone_id="Europe/Berlin", color_scheme="light")
        context.add_init_script(RECORDER)
        page = context.new_page()
        visit(demo, page)
        page.evaluate("() => document.fonts.ready")
        saved += save(page, paths, full_page=False)  # the viewport only
        context.close()
    return saved


# -------------------------------------------------------------------- main


class Shoot(Protocol):
    def __call__(
        self, browser: Browser, demo: Demo, outdir: Path | None, *, docs: bool, only: str | None
    ) -> list[Path]: ...


SETS: dict[str, Shoot] = {"pages": shoot_pages, "dashboard": shoot_dashboard, "embed": shoot_embed}
COMMANDS = {
    "pages": "every invitee page",
    "dashboard": "every owner page",
    "embed": "the widget on the demo host page",
    "all": "the three",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("outdir", nargs="?", type=Path, metavar="OUTDIR", help="where every shot goes")
    options.add_argument("--docs", action="store_true", help="also refresh the shots in docs/screenshots/")
    options.add_argument("--only", metavar="REGEX", help="only the shots whose name matches")
    commands = parser.add_subparsers(dest="command", required=True, metavar="pages|dashboard|embed|all")
    for command, help_text in COMMANDS.items():
        commands.add_parser(command, parents=[options], help=help_text, description=help_text)
    args = parser.parse_args(argv)
    if args.outdir is None and not args.docs:
        parser.error("give OUTDIR, --docs or both")
    if args.outdir is not None:
        args.outdir.mkdir(parents=True, exist_ok=True)
    chosen = list(SETS.values()) if args.command == "all" else [SETS[args.command]]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with (
        tempfile.TemporaryDirectory() as tmp,
        live_server(f"sqlite:///{tmp}/oncecal.sqlite3", CONNECTIONS_ALLOW_PRIVATE=True) as server,
        RadicaleServer(Path(tmp) / "radicale") as radicale,
        HTTPStub() as stub,
        sync_playwright() as playwright,
    ):
        server.app.config["SCREENSHOT_CALDAV_URL"] = radicale.url
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        demo = seed(server, browser, radicale, stub)
        for shoot in chosen:
            for path in shoot(browser, demo, args.outdir, docs=args.docs, only=args.only):
                print(path)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
