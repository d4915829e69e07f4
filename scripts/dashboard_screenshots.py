"""Save screenshots of every owner page, light and dark, desktop and phone.

Usage: .venv/bin/python scripts/dashboard_screenshots.py OUTDIR [--readme]

Starts the real app on a throwaway SQLite file, signs an owner up through the
browser, adds calendars, links of every status and bookings, then drives
Debian's Chromium through each dashboard page and writes
OUTDIR/<page>-<device>-<theme>.png. With --readme it also refreshes
docs/screenshots/share-dialog.png (the One Time Link tab, 1280x800, light).
"""

from __future__ import annotations

import logging
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from oncecal import events  # noqa: E402
from oncecal.app_objects import runtime  # noqa: E402
from oncecal.extensions import db  # noqa: E402
from oncecal.models import Calendar, utcnow  # noqa: E402
from oncecal.services import bookings, links, owners  # noqa: E402
from oncecal.services.bookings import Invitee  # noqa: E402
from oncecal.worker import run_worker  # noqa: E402
from tests.browser.live import CHROMIUM, CHROMIUM_ARGS, LiveServer, live_server  # noqa: E402
from tests.servers import free_port  # noqa: E402

DEVICES = {"desktop": (1280, 800), "phone": (375, 740)}
THEMES = ("light", "dark")
EMAIL = "dana@example.com"
PASSWORD = "correct horse battery"
README_SHOT = ROOT / "docs" / "screenshots" / "share-dialog.png"
LONG_NAME = "Quarterly architecture review and roadmap planning session"
WORKDAYS = {str(d): [["09:00", "12:00"], ["13:00", "17:00"]] for d in range(5)}


@dataclass
class Demo:
    server: LiveServer
    storage: dict[str, Any]
    calendar_id: int
    long_calendar_id: int
    empty_calendar_id: int

    def url(self, path: str) -> str:
        return f"{self.server.url}{path}"


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


def seed(server: LiveServer, storage: dict[str, Any]) -> Demo:
    """Add more calendars, links of every status and bookings behind the browser's back."""
    keys = runtime_keys(server)
    with server.app.app_context():
        owner = owners.owner_by_email(EMAIL)
        assert owner is not None
        owner.phone = "+49 30 1234567"
        calendar = db.session.scalars(db.select(Calendar).where(Calendar.owner_id == owner.id)).one()
        calendar.location = "Video call (the link comes with your confirmation)"
        calendar.weekly_hours = {str(d): [["00:00", "24:00"]] for d in range(7)}
        calendar.min_notice_minutes = 0
        long_calendar = Calendar(
            owner=owner,
            name=LONG_NAME,
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
        db.session.add_all([long_calendar, empty_calendar])
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
        links.revoke_link(revoked, now - timedelta(days=5))
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
            on_booked=events.booking_created,
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
        bookings.cancel_booking(booking, now, by="owner")
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
        return Demo(server, storage, calendar.id, long_calendar.id, empty_calendar.id)


def runtime_keys(server: LiveServer) -> Any:
    with server.app.app_context():
        return runtime().link_keys


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
    expect(page.get_by_role("link", name="Bookings")).to_be_visible()


def share_tab(tab: str, calendar: str = "calendar_id") -> Callable[[Demo, Page], None]:
    def visit(demo: Demo, page: Page) -> None:
        page.goto(demo.url(f"/dashboard/calendars/{getattr(demo, calendar)}/share?tab={tab}"))
        expect(page.get_by_role("dialog")).to_be_visible()

    return visit


def share_generated(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.long_calendar_id}/share?tab=one-time"))
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
    page.goto(demo.url(f"/dashboard/calendars/{demo.calendar_id}/edit"))


def links_page(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.calendar_id}/links"))


def links_new(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.calendar_id}/links"))
    page.get_by_text("New one-time link").click()
    page.get_by_label("Prefill email").fill("nope")
    page.get_by_role("button", name="Create link").click()
    expect(page.locator(".field-error")).to_be_visible()


def links_empty(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.empty_calendar_id}/links?status=used"))


def bookings_page(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.calendar_id}/bookings"))


def calendar_delete(demo: Demo, page: Page) -> None:
    page.goto(demo.url(f"/dashboard/calendars/{demo.calendar_id}/delete"))


def profile(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/dashboard/profile"))


def password(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/dashboard/password"))


def integrations(demo: Demo, page: Page) -> None:
    page.goto(demo.url("/dashboard/integrations"))


LOGGED_OUT = {"login", "login-error", "signup-errors"}
SHOTS: dict[str, Callable[[Demo, Page], None]] = {
    "login": login,
    "login-error": login_error,
    "signup-errors": signup_errors,
    "calendars": calendars,
    "calendars-menu": calendars_menu,
    "share-scheduling": share_tab("scheduling"),
    "share-permanent": share_tab("permanent"),
    "share-one-time": share_tab("one-time"),
    "share-embed": share_tab("embed"),
    "share-one-time-none": share_tab("one-time", "empty_calendar_id"),
    "share-scheduling-off": share_tab("scheduling", "empty_calendar_id"),
    "share-embed-off": share_tab("embed", "empty_calendar_id"),
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
}


def shoot(browser: Browser, demo: Demo, outdir: Path, only: str | None) -> list[Path]:
    saved = []
    for name, visit in SHOTS.items():
        if only and not re.search(only, name):
            continue
        for device, (width, height) in DEVICES.items():
            for theme in THEMES:
                context = browser.new_context(
                    viewport={"width": width, "height": height},
                    timezone_id="Europe/Berlin",
                    storage_state=None if name in LOGGED_OUT else demo.storage,  # type: ignore[arg-type]
                    permissions=["clipboard-read", "clipboard-write"],
                )
                page = context.new_page()
                page.emulate_media(color_scheme=theme)  # type: ignore[arg-type]
                visit(demo, page)
                if name.startswith("share"):
                    # The dialog scrolls inside its fixed backdrop: grow the
                    # viewport to show all of it (a full-page shot would not).
                    needed = page.locator(".modal-backdrop").evaluate("e => e.scrollHeight")
                    page.set_viewport_size({"width": width, "height": max(height, needed)})
                path = outdir / f"{name}-{device}-{theme}.png"
                page.screenshot(path=path, full_page=not name.startswith("share"))
                saved.append(path)
                context.close()
    return saved


def readme_shot(browser: Browser, demo: Demo) -> Path:
    """The Share dialog's One Time Link tab with a link, as the README shows it."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        storage_state=demo.storage,  # type: ignore[arg-type]
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    page.emulate_media(color_scheme="light")
    page.goto(demo.url(f"/dashboard/calendars/{demo.calendar_id}/share?tab=one-time"))
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("dialog").get_by_text("Copied!")).to_be_visible()
    README_SHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=README_SHOT)
    context.close()
    return README_SHOT


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = {a.split("=", 1)[0]: a.split("=", 1)[-1] for a in argv[1:] if a.startswith("--")}
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    outdir = Path(args[0])
    outdir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with (
        tempfile.TemporaryDirectory() as tmp,
        live_server(f"sqlite:///{tmp}/oncecal.sqlite3") as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        demo = seed(server, sign_up(browser, server))
        for path in shoot(browser, demo, outdir, flags.get("--only")):
            print(path)
        if "--readme" in flags:
            print(readme_shot(browser, demo))
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
