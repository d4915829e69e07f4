"""Save screenshots of every invitee page, light and dark, desktop and phone.

Usage: .venv/bin/python scripts/screenshots.py OUTDIR
       .venv/bin/python scripts/screenshots.py --docs

Starts the real app on a throwaway SQLite file with demo-like data, drives
Debian's Chromium through each page and writes OUTDIR/<page>-<device>-<theme>.png.
With --docs it writes the pages the accessibility work is judged on (booking,
manage, reschedule, cancelled, expired) at 320 px in both themes and on a
desktop in the dark theme, to docs/screenshots/.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402

from oncecal.app_objects import runtime  # noqa: E402
from oncecal.demo import DEMO_CALENDAR, DEMO_EXPIRED_MESSAGE  # noqa: E402
from oncecal.extensions import db  # noqa: E402
from oncecal.models import Calendar, Owner, utcnow  # noqa: E402
from oncecal.services import bookings, links  # noqa: E402
from oncecal.services.bookings import Invitee  # noqa: E402
from tests.browser.live import CHROMIUM, CHROMIUM_ARGS, LiveServer, live_server  # noqa: E402

WIDTHS = {"desktop": 1280, "phone": 320}
THEMES = ("light", "dark")
DOCS_DIR = ROOT / "docs" / "screenshots"
# Shot name -> the name in docs/screenshots/, and which (device, theme) pairs go there.
DOCS_SHOTS = {
    "booking": "booking",
    "confirmation": "manage",
    "reschedule": "reschedule",
    "cancelled": "cancelled",
    "410-expired": "expired",
}
DOCS_VARIANTS = (("phone", "light"), ("phone", "dark"), ("desktop", "dark"))
# Long enough to show whether names, emails and zones wrap on a phone.
LONG_NAME = "Maximiliana Alexandra Featherstonehaugh-Wolfeschlegelsteinhausen"
LONG_EMAIL = "maximiliana.featherstonehaugh@a-really-quite-long-company-name.example.com"


@dataclass
class Demo:
    server: LiveServer
    calendar_id: int
    long_calendar_id: int

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


def seed(server: LiveServer) -> Demo:
    """Add the demo owner's calendar and one with very long names."""
    with server.app.app_context():
        owner = Owner(
            email="dana@oncecal.test",
            name="Dana Demo",
            phone="+1 555 0100",
            password_hash="not-a-real-hash",
            expired_message=DEMO_EXPIRED_MESSAGE,
        )
        calendar = Calendar(owner=owner, **DEMO_CALENDAR)
        long_owner = Owner(email=LONG_EMAIL, name=LONG_NAME, password_hash="not-a-real-hash")
        long_calendar = Calendar(
            owner=long_owner,
            name="Quarterly architecture review and roadmap planning session",
            slug="long",
            duration_minutes=90,
            timezone="America/Argentina/ComodRivadavia",
            min_notice_minutes=0,
            location="https://meet.example.com/a-very-long-meeting-room-identifier-without-breaks-0123456789",
            weekly_hours={str(d): [["08:00", "20:00"]] for d in range(7)},
        )
        db.session.add_all([owner, calendar, long_owner, long_calendar])
        db.session.commit()
        return Demo(server, calendar.id, long_calendar.id)


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


SHOTS: dict[str, Callable[[Demo, Page, str], None]] = {
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


def shot(browser: Browser, demo: Demo, name: str, device: str, theme: str, path: Path) -> Path:
    width = WIDTHS[device]
    context = browser.new_context(
        viewport={"width": width, "height": 800 if width > 600 else 640},
        timezone_id="Europe/Berlin",
        color_scheme="light",
    )
    page = context.new_page()
    SHOTS[name](demo, page, theme)
    page.screenshot(path=path, full_page=True)
    context.close()
    return path


def shoot(browser: Browser, demo: Demo, outdir: Path) -> list[Path]:
    return [
        shot(browser, demo, name, device, theme, outdir / f"{name}-{device}-{theme}.png")
        for name in SHOTS
        for device in WIDTHS
        for theme in THEMES
    ]


def shoot_docs(browser: Browser, demo: Demo) -> list[Path]:
    return [
        shot(browser, demo, name, device, theme, DOCS_DIR / f"{docs_name}-{WIDTHS[device]}-{theme}.png")
        for name, docs_name in DOCS_SHOTS.items()
        for device, theme in DOCS_VARIANTS
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    docs = argv[1] == "--docs"
    outdir = DOCS_DIR if docs else Path(argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, live_server(f"sqlite:///{tmp}/oncecal.sqlite3") as server:
        demo = seed(server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for path in shoot_docs(browser, demo) if docs else shoot(browser, demo, outdir):
                print(path)
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
