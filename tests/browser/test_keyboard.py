"""An invitee books by keyboard alone, seeing where the focus is, in Chromium."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from oncecal.extensions import db
from oncecal.models import Booking
from tests.conftest import MakeCalendar, MakeLink, MakeOwner
from tests.support.live import LiveServer

pytestmark = pytest.mark.browser

# Mornings only: six times a day, so the arrow keys reach the next day soon.
MORNINGS = {str(d): [["09:00", "12:00"]] for d in range(7)}
WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
# "Tuesday, 1 December 2026, 09:30" from the server; "Tuesday, December 1, 2026 at 9:30 AM" from the script.
SPOKEN_SLOT = re.compile(rf"^({WEEKDAYS}), .*\b({MONTHS})\b.*\b\d{{4}}\b.*\b\d{{1,2}}:\d\d\b")

# What has the focus, and whether a ring shows it: the element's own outline or
# shadow, or for a slot (a radio drawn as its label) the label's.
FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const drawn = el.matches(".slot-input") ? document.querySelector(`label[for="${CSS.escape(el.id)}"]`) : el;
  const style = getComputedStyle(drawn);
  return {
    element: el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.name ? `[name=${el.name}]` : ""),
    text: (el.getAttribute("aria-label") || el.textContent || "").trim().slice(0, 60),
    value: el.value || null,
    day: el.closest(".day") ? [...document.querySelectorAll(".day")].indexOf(el.closest(".day")) : null,
    focusVisible: el.matches(":focus-visible"),
    ring: (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2) || style.boxShadow !== "none",
    outline: `${style.outlineStyle} ${style.outlineWidth} ${style.outlineColor}`,
  };
}"""


def focused(page: Page) -> dict[str, Any]:
    """Describe the focused element; fail unless a focus ring shows it."""
    info = page.evaluate(FOCUS)
    assert info is not None, "nothing has the focus"
    assert info["focusVisible"] and info["ring"], f"focus is not visible on {info}"
    return info


def press(page: Page, key: str) -> dict[str, Any]:
    page.keyboard.press(key)
    return focused(page)


def tab_until(page: Page, wanted: re.Pattern[str], key: str = "Tab", limit: int = 30) -> dict[str, Any]:
    """Press Tab (or ``key``) until the focused element's description matches; each stop must show its focus."""
    stops = []
    for _ in range(limit):
        info = press(page, key)
        stops.append(f"{info['element']} {info['text']!r}")
        if wanted.search(f"{info['element']} {info['text']}"):
            return info
    raise AssertionError(f"{wanted.pattern} never got the focus; stops: {stops}")


@pytest.fixture
def morning_link(
    server: LiveServer, make_owner: MakeOwner, make_calendar: MakeCalendar, make_link: MakeLink
) -> str:
    with server.app.app_context():
        calendar = make_calendar(
            owner=make_owner(name="Olivia Owner"), timezone="UTC", weekly_hours=MORNINGS, min_notice_minutes=0
        )
        _link, token = make_link(calendar)
    return f"{server.url}/l/{token}"


def test_booking_by_keyboard_alone_with_visible_focus(
    browser: Browser, server: LiveServer, morning_link: str
) -> None:
    context = browser.new_context(timezone_id="UTC", locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(morning_link)

    # The next week, through the week navigation.
    tab_until(page, re.compile(r"^a .*Later"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]date=\d{4}-\d\d-\d\d"))

    # Into the times: the group is one stop; arrows move through it, day by day.
    first = tab_until(page, re.compile(r"\[name=slot\]"))
    assert first["day"] == 0
    chosen = first
    for _ in range(12):
        if chosen["day"] == 1:
            break
        chosen = press(page, "ArrowRight")
    assert chosen["day"] == 1, chosen
    page.keyboard.press("Space")
    slot = page.locator(f'input[name="slot"][value="{chosen["value"]}"]')
    expect(slot).to_be_checked()
    assert SPOKEN_SLOT.search(chosen["text"]), chosen["text"]

    # Details; Shift+Tab goes back to the chosen time, not to the first one.
    assert tab_until(page, re.compile(r"#name"))["element"].startswith("input")
    assert press(page, "Shift+Tab")["value"] == chosen["value"]
    tab_until(page, re.compile(r"#name"))
    page.keyboard.type("Kim Keyboard")
    tab_until(page, re.compile(r"#email"))
    # Good enough for the browser's check, not for the server's: the page comes back with an error.
    page.keyboard.type("kim@example")
    tab_until(page, re.compile(r"^button .*Confirm booking"))
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.keyboard.press("Enter")
    assert posted.value.status == 400

    # The message is announced (a live region with the focus), tied to its field, and the time is kept.
    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("email")
    email = page.get_by_role("textbox", name="Email")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_attribute("aria-describedby", re.compile(r"(^| )email-error( |$)"))
    expect(email).to_have_accessible_description(re.compile(r"email", re.IGNORECASE))
    expect(slot).to_be_checked()

    # The message's link takes the focus to the field.
    tab_until(page, re.compile(r"^a .*email", re.IGNORECASE), limit=3)
    page.keyboard.press("Enter")
    assert focused(page)["element"] == "input#email[name=email]"
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type("kim@example.com")
    tab_until(page, re.compile(r"^button .*Confirm booking"))
    with page.expect_navigation():
        page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="You are booked")).to_be_visible()
    expect(page.locator("[data-oncecal-state=booked]")).to_have_attribute(
        "data-booking-start", chosen["value"]
    )
    with server.app.app_context():
        booking = db.session.scalars(
            sa.select(Booking).where(Booking.invitee_email == "kim@example.com")
        ).one()
        assert booking.invitee_name == "Kim Keyboard"
        assert booking.start_at.strftime("%Y-%m-%dT%H:%M:%SZ") == chosen["value"]
    context.close()


@pytest.mark.parametrize("script", [True, False], ids=["script", "no-script"])
def test_slots_are_radios_named_by_date_and_time_in_words(
    browser: Browser, morning_link: str, script: bool
) -> None:
    context = browser.new_context(timezone_id="UTC", locale="en-US", java_script_enabled=script)
    page = context.new_page()
    page.goto(morning_link)
    times = page.get_by_role("group", name=re.compile("Choose a time")).get_by_role("radio")
    expect(times.first).to_be_visible()
    assert times.count() >= 6
    for radio in times.all():
        expect(radio).to_have_accessible_name(SPOKEN_SLOT)
    # Each of the seven days is a group of its own, named by the day ("Tue 1 Dec").
    days = page.get_by_role(
        "group", name=re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2}$")
    )
    expect(days).to_have_count(7)
    context.close()


@pytest.mark.parametrize("script", [True, False], ids=["script", "no-script"])
def test_the_zone_picker_changes_zone_only_when_asked_and_keeps_the_focus(
    browser: Browser, morning_link: str, script: bool
) -> None:
    context = browser.new_context(timezone_id="Europe/Berlin", locale="en-US", java_script_enabled=script)
    page = context.new_page()
    page.goto(f"{morning_link}?tz=Europe/Berlin")
    loads: list[str] = []
    page.on("load", lambda: loads.append(page.url))
    picker = page.get_by_label("Show times in")
    picker.focus()

    # An arrow key on the closed select picks the next zone and nothing more (WCAG 3.2.2).
    page.keyboard.press("ArrowDown")
    chosen = page.evaluate("document.activeElement.id === 'tz' && document.activeElement.value")
    assert chosen and chosen != "Europe/Berlin", chosen
    expect(page.get_by_text("Times in Europe/Berlin")).to_be_visible()
    assert loads == []

    # The explicit action: the button beside it, reached by Tab.
    tab_until(page, re.compile(r"^button .*Show times"), limit=2)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_text(f"Times in {chosen.replace('_', ' ')}")).to_be_visible()
    expect(page.locator("input[name=timezone]")).to_have_value(chosen)
    if script:
        expect(picker).to_be_focused()
        assert focused(page)["element"] == "select#tz[name=tz]"
        # Enter on the picker is the other explicit action.
        page.keyboard.press("ArrowDown")
        again = picker.input_value()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        expect(page.locator("input[name=timezone]")).to_have_value(again)
        expect(picker).to_be_focused()
    else:
        # Without a script the fragment brings the picker into view; Tab goes on from it.
        assert page.url.endswith("#tz")
    context.close()
