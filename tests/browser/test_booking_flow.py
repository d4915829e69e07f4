"""An invitee books through a one-time link in a real browser, with and without JavaScript."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import OWNER_EMAIL, OWNER_NAME

pytestmark = pytest.mark.browser


def choose_a_time_and_book(page: Page, name: str = "Ivy Invitee", email: str = "ivy@example.com") -> str:
    """Pick a time on the booking page, fill in the details, confirm; return the slot's value."""
    # A slot of the second day shown: hours ahead, so it cannot pass while the test runs.
    label = page.locator(".day").nth(1).locator("label.slot").first
    start = label.get_attribute("data-start")
    assert start is not None and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00Z", start)
    label.click()
    expect(page.locator(f'input[name="slot"][value="{start}"]')).to_be_checked()
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Confirm booking").click()
    return start


def expect_booked(page: Page, start: str) -> None:
    expect(page.get_by_role("heading", name="You are booked")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/b/[^/?]+(\?.*)?$"))
    expect(page.locator("[data-oncecal-state=booked]")).to_have_attribute("data-booking-start", start)


def expect_expired(page: Page) -> None:
    expect(page.get_by_role("heading", name="This link has expired")).to_be_visible()
    expect(page.locator("[data-oncecal-state=expired]")).to_contain_text(f"Please contact {OWNER_NAME}")
    expect(page.get_by_role("listitem").filter(has_text="Name")).to_contain_text(OWNER_NAME)
    expect(page.get_by_role("link", name=OWNER_EMAIL)).to_have_attribute("href", f"mailto:{OWNER_EMAIL}")


def test_booking_through_a_link_then_reopening_it_shows_expired_page(browser: Browser, link_url: str) -> None:
    # The calendar's own zone, so the page has no reason to switch zones under the test.
    context = browser.new_context(timezone_id="UTC")
    page = context.new_page()

    opened = page.goto(link_url)
    assert opened is not None and opened.status == 200
    start = choose_a_time_and_book(page)
    expect_booked(page, start)

    reopened = page.goto(link_url)
    assert reopened is not None and reopened.status == 410
    expect_expired(page)
    context.close()


def test_page_switches_to_browser_zone_and_books_in_it(browser: Browser, link_url: str) -> None:
    context = browser.new_context(timezone_id="America/New_York")
    page = context.new_page()

    page.goto(link_url)
    expect(page).to_have_url(re.compile(r"[?&]tz=America%2FNew_York(&|$)"))
    expect(page.locator("#tz")).to_have_value("America/New_York")
    expect(page.get_by_text("Times in America/New York")).to_be_visible()
    # The full zone list of the browser replaces the server's short one.
    expect(page.locator("#tz option[value='Pacific/Chatham']")).to_have_count(1)
    expect(page.get_by_role("button", name="Show times")).to_be_visible()

    start = choose_a_time_and_book(page)
    expect_booked(page, start)
    expect(page.locator("[data-oncecal-state=booked]")).to_have_attribute(
        "data-booking-timezone", "America/New_York"
    )
    expect(page.get_by_text("(America/New York)")).to_be_visible()
    context.close()


def test_booking_works_without_javascript(browser: Browser, link_url: str) -> None:
    context = browser.new_context(java_script_enabled=False, timezone_id="America/New_York")
    page = context.new_page()

    page.goto(link_url)
    # No script: the page stays in the calendar's zone until the invitee picks one.
    expect(page.locator("#tz")).to_have_value("UTC")
    page.locator("#tz").select_option("Asia/Tokyo")
    page.get_by_role("button", name="Show times").click()
    expect(page.get_by_text("Times in Asia/Tokyo")).to_be_visible()
    expect(page.locator("input[name=timezone]")).to_have_value("Asia/Tokyo")

    start = choose_a_time_and_book(page)
    expect_booked(page, start)
    expect(page.locator("[data-oncecal-state=booked]")).to_have_attribute(
        "data-booking-timezone", "Asia/Tokyo"
    )

    reopened = page.goto(link_url)
    assert reopened is not None and reopened.status == 410
    expect_expired(page)
    context.close()


@pytest.mark.parametrize(
    ("locale", "expected"), [("en-US", r"12:00\s*–\s*12:30\s*AM"), ("en-GB", r"00:00\s*–\s*00:30")]
)
def test_confirmation_says_the_time_range_in_the_readers_clock_once(
    browser: Browser, link_url: str, locale: str, expected: str
) -> None:
    context = browser.new_context(timezone_id="UTC", locale=locale)
    page = context.new_page()
    page.goto(link_url)
    # The first slot of the second day shown: 00:00 UTC, 30 minutes.
    start = choose_a_time_and_book(page)
    expect_booked(page, start)
    assert start.endswith("T00:00:00Z")
    expect(page.locator("[data-start][data-end]")).to_have_text(re.compile(rf"^{expected}$"))
    context.close()
