"""Save screenshots of the embed widget on the demo host page (another site than the app).

Usage: .venv/bin/python scripts/embed_screenshots.py OUTDIR

Starts the real app on a throwaway SQLite file with demo-like data, opens
http://localhost:<port>/demo/host while the app answers on 127.0.0.1:<port>,
waits until each frame has settled (as tall as its content) and writes
OUTDIR/embed-*.png: viewport shots, desktop 1280x900 and phone 375x740. The
inline, popup and dark desktop shots are also copied to docs/screenshots/.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from scripts.screenshots import Demo, seed  # noqa: E402
from tests.support.embedding import RECORDER, demo_host, wait_for_event, wait_until_fits  # noqa: E402
from tests.support.live import CHROMIUM, CHROMIUM_ARGS, live_server  # noqa: E402

DOCS = ROOT / "docs" / "screenshots"
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


# name: (viewport, visit, copy into docs/screenshots)
SHOTS: dict[str, tuple[dict[str, int], Callable[[Demo, Page], None], bool]] = {
    "embed-inline": (DESKTOP, inline, True),
    "embed-popup": (DESKTOP, popup, True),
    "embed-dark": (DESKTOP, inline_dark, True),
    "embed-popup-booked": (DESKTOP, popup_booked, False),
    "embed-inline-phone": (PHONE, inline, False),
    "embed-popup-phone": (PHONE, popup_picked, False),
    "embed-popup-booked-phone": (PHONE, popup_booked, False),
}


def shoot(browser: Browser, demo: Demo, outdir: Path) -> list[Path]:
    saved = []
    for name, (viewport, visit, publish) in SHOTS.items():
        context = browser.new_context(viewport=viewport, timezone_id="Europe/Berlin", color_scheme="light")
        context.add_init_script(RECORDER)
        page = context.new_page()
        visit(demo, page)
        page.evaluate("() => document.fonts.ready")
        path = outdir / f"{name}.png"
        page.screenshot(path=path)  # the viewport only, not the full page
        saved.append(path)
        if publish:
            DOCS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS / path.name)
        context.close()
    return saved


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    outdir = Path(argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, live_server(f"sqlite:///{tmp}/oncecal.sqlite3") as server:
        demo = seed(server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for path in shoot(browser, demo, outdir):
                print(path)
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
