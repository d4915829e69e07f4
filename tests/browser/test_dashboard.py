"""An owner signs up, shares a calendar through the Share dialog and manages one-time links, in Chromium."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.test_booking_flow import choose_a_time_and_book
from tests.support.live import LiveServer

pytestmark = pytest.mark.browser

TAB_NAMES = ["Scheduling Link", "Permanent Link", "One Time Link", "Embed Code"]
PANEL_IDS = ["panel-scheduling", "panel-permanent", "panel-one-time", "panel-embed"]
CALENDAR = "Consultation"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
INVITEE = "Ivy Invitee"


def sign_up(page: Page, server: LiveServer) -> None:
    """Create an owner account through the sign-up page."""
    page.goto(f"{server.url}/signup")
    page.get_by_label("Your name").fill("Olivia Owner")
    page.get_by_label("Email").fill(f"olivia-{secrets.token_hex(4)}@example.com")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/dashboard/calendars/new$"))


def create_calendar(page: Page, name: str = CALENDAR) -> None:
    """Fill in the new-calendar form: open around the clock, no minimum notice."""
    expect(page.get_by_role("heading", name="New calendar")).to_be_visible()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Time zone").select_option("UTC")
    for day in WEEKDAYS:
        page.get_by_label(day).fill("00:00-24:00")
    page.get_by_label("Minimum notice (minutes)").fill("0")
    page.get_by_role("button", name="Create calendar").click()
    # A new calendar opens its Share dialog on the One Time Link tab.
    expect(dialog(page)).to_be_visible()
    expect(dialog(page).get_by_role("tab", name="One Time Link")).to_have_attribute("aria-selected", "true")


def dialog(page: Page) -> Locator:
    return page.get_by_role("dialog", name=f"Share “{CALENDAR}”")


def open_calendars(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/dashboard/")
    expect(page.get_by_role("heading", name="Your calendars")).to_be_visible()


def open_share(page: Page) -> Locator:
    """Open the Share dialog from the calendar list's "Share" button."""
    page.get_by_role("link", name="Share", exact=True).click()
    share = dialog(page)
    expect(share).to_be_visible()
    return share


def select_tab(page: Page, name: str) -> None:
    tab = dialog(page).get_by_role("tab", name=name, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


def generate(page: Page) -> str:
    """Press "Generate New Link" and return the link the One Time Link tab then shows."""
    panel = dialog(page).get_by_role("tabpanel", name="One Time Link")
    before = panel.get_by_role("textbox", name="One-time link", exact=True)
    old = before.input_value() if before.count() else None
    panel.get_by_role("button", name="Generate New Link").click()
    field = (
        dialog(page)
        .get_by_role("tabpanel", name="One Time Link")
        .get_by_role("textbox", name="One-time link", exact=True)
    )
    expect(field).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/l/[A-Za-z0-9_-]{22,}$"))
    if old is not None:
        expect(field).not_to_have_value(old)
    return field.input_value()


def link_row(page: Page, url: str) -> Locator:
    """The row of a link on the One-time links page, found by the link id behind its URL."""
    return page.locator("tr[data-link-id]").filter(has=page.locator(f'input[value="{url}"]'))


@pytest.fixture
def owner(browser: Browser, server: LiveServer) -> Iterator[tuple[BrowserContext, Page]]:
    """A signed-up owner with a calendar, in a context that may use the clipboard."""
    context = browser.new_context(timezone_id="UTC", permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    sign_up(page, server)
    create_calendar(page)
    yield context, page
    context.close()


def test_share_dialog_tabs_work_by_keyboard(owner: tuple[BrowserContext, Page], server: LiveServer) -> None:
    _context, page = owner
    open_calendars(page, server)
    share = open_share(page)

    tabs = share.get_by_role("tab")
    expect(tabs).to_have_text(TAB_NAMES)
    expect(share.get_by_role("tablist", name="Ways to share")).to_be_visible()

    def expect_selected(index: int) -> None:
        for i, name in enumerate(TAB_NAMES):
            tab = share.get_by_role("tab", name=name, exact=True)
            panel = page.locator(f"#{PANEL_IDS[i]}")
            if i == index:
                expect(tab).to_be_focused()
                expect(tab).to_have_attribute("aria-selected", "true")
                expect(tab).to_have_attribute("tabindex", "0")
                expect(panel).to_be_visible()
                expect(share.get_by_role("tabpanel")).to_have_count(1)
                expect(share.get_by_role("tabpanel", name=name)).to_be_visible()
            else:
                expect(tab).to_have_attribute("aria-selected", "false")
                expect(tab).to_have_attribute("tabindex", "-1")
                expect(panel).to_be_hidden()

    # Opening the dialog focuses the selected tab: the first one.
    expect_selected(0)
    expect(share.get_by_role("textbox", name="Scheduling link", exact=True)).to_have_value(
        re.compile(r"/c/consultation$")
    )
    for index in (1, 2, 3):
        page.keyboard.press("ArrowRight")
        expect_selected(index)
    expect(share.get_by_role("textbox", name="Inline", exact=True)).to_have_value(
        re.compile(r'class="oncecal-inline"')
    )
    page.keyboard.press("ArrowRight")  # wraps around
    expect_selected(0)
    page.keyboard.press("ArrowLeft")  # and back
    expect_selected(3)
    page.keyboard.press("Home")
    expect_selected(0)
    page.keyboard.press("End")
    expect_selected(3)
    page.keyboard.press("ArrowLeft")
    expect_selected(2)
    expect(page).to_have_url(re.compile(r"[?&]tab=one-time$"))
    # Tab moves from the tab list into the shown panel, not to the other tabs.
    page.keyboard.press("Tab")
    expect(page.locator("#panel-one-time")).to_be_focused()

    # A reload keeps the tab. The page behind the modal is inert; Escape closes the dialog.
    page.reload()
    expect_selected(2)
    expect(page.locator(".site-header")).to_have_js_property("inert", True)
    expect(page.locator(".calendar-list")).to_have_js_property("inert", True)
    page.keyboard.press("Escape")
    expect(share).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))

    # The "⋯" menu of the calendar: Escape closes it, and its "Share" opens the dialog too.
    more = page.get_by_label(f"More actions for {CALENDAR}")
    menu_link = page.get_by_role("link", name="One-time links")
    more.click()
    expect(menu_link).to_be_visible()
    page.keyboard.press("Escape")
    expect(menu_link).to_be_hidden()
    expect(more).to_be_focused()
    page.keyboard.press("Enter")
    expect(menu_link).to_be_visible()
    page.locator(".menu-items").get_by_role("link", name="Share").click()
    expect(share).to_be_visible()
    expect_selected(0)
    # A click on the backdrop, outside the dialog, closes it.
    page.mouse.click(5, 700)
    expect(share).to_be_hidden()


def test_generate_copy_and_book_a_one_time_link(
    owner: tuple[BrowserContext, Page], server: LiveServer, browser: Browser
) -> None:
    context, page = owner
    open_calendars(page, server)
    share = open_share(page)
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    panel = share.get_by_role("tabpanel", name="One Time Link")

    # No link yet: only "Generate New Link" is offered, and opening the dialog made none.
    expect(panel.get_by_role("button", name="Generate New Link")).to_be_visible()
    expect(panel.get_by_role("button", name="Copy")).to_have_count(0)
    expect(panel.get_by_role("textbox")).to_have_count(0)
    page.reload()
    expect(panel.get_by_role("button", name="Copy")).to_have_count(0)

    older = generate(page)
    newest = generate(page)
    assert newest != older

    panel.get_by_role("button", name="Copy").click()
    expect(panel.get_by_text("Copied!")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == newest

    # The invitee books through the copied link.
    invitee_context = browser.new_context(timezone_id="UTC")
    invitee = invitee_context.new_page()
    opened = invitee.goto(copied)
    assert opened is not None and opened.status == 200
    choose_a_time_and_book(invitee, name=INVITEE)
    expect(invitee.get_by_role("heading", name="You are booked")).to_be_visible()

    # The links page lists it as used, with the invitee's name; the older one is still active.
    share.get_by_role("link", name="One-time links").click()
    expect(page.get_by_role("heading", name="One-time links")).to_be_visible()
    used = page.locator("tr[data-status=used]")
    expect(used).to_have_count(1)
    expect(used.locator(".badge")).to_have_text("Used")
    expect(used).to_contain_text(INVITEE)
    expect(link_row(page, older)).to_have_attribute("data-status", "active")
    expect(link_row(page, older).locator(".badge")).to_have_text("Active")

    # Reopening the used link shows the expired page.
    reopened = invitee.goto(copied)
    assert reopened is not None and reopened.status == 410
    expect(invitee.get_by_role("heading", name="This link has expired")).to_be_visible()
    invitee_context.close()

    # Share now offers the older unused link; "Generate New Link" gives a fresh, working one.
    open_calendars(page, server)
    open_share(page)
    select_tab(page, "One Time Link")
    expect(panel.get_by_role("textbox", name="One-time link", exact=True)).to_have_value(older)
    fresh = generate(page)
    assert fresh not in (older, newest)
    panel.get_by_role("button", name="Copy").click()
    expect(panel.get_by_text("Copied!")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == fresh

    checker = context.new_page()
    for url in (fresh, older):
        response = checker.goto(url)
        assert response is not None and response.status == 200, url
        expect(checker.get_by_role("button", name="Confirm booking")).to_be_visible()
    checker.close()


def test_revoked_link_shows_the_expired_page(owner: tuple[BrowserContext, Page], server: LiveServer) -> None:
    context, page = owner
    first = generate(page)
    second = generate(page)

    dialog(page).get_by_role("link", name="One-time links").click()
    expect(page.get_by_role("heading", name="One-time links")).to_be_visible()
    expect(page.locator("tr[data-status=active]")).to_have_count(2)

    row = link_row(page, first)
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text(re.compile(r"Link #\d+ revoked\."))).to_be_visible()
    revoked = page.locator("tr[data-status=revoked]")
    expect(revoked).to_have_count(1)
    expect(revoked.locator(".badge")).to_have_text("Revoked")
    expect(revoked.get_by_role("button", name="Revoke")).to_have_count(0)
    expect(link_row(page, second)).to_have_attribute("data-status", "active")

    # Dismissing the confirmation keeps the link.
    page.once("dialog", lambda d: d.dismiss())
    link_row(page, second).get_by_role("button", name="Revoke").click()
    expect(link_row(page, second)).to_have_attribute("data-status", "active")

    visitor = context.new_page()
    response = visitor.goto(first)
    assert response is not None and response.status == 410
    expect(visitor.get_by_role("heading", name="This link has expired")).to_be_visible()
    expect(visitor.get_by_text("was withdrawn")).to_be_visible()
    response = visitor.goto(second)
    assert response is not None and response.status == 200
    visitor.close()

    # The Share dialog no longer offers the revoked link.
    open_calendars(page, server)
    open_share(page)
    select_tab(page, "One Time Link")
    expect(dialog(page).get_by_role("textbox", name="One-time link", exact=True)).to_have_value(second)


@pytest.mark.parametrize("clipboard", ["removed", "not-permitted"])
def test_copy_selects_the_link_without_the_clipboard_api(
    browser: Browser, server: LiveServer, clipboard: str
) -> None:
    # Without permissions a write to the Clipboard API is refused; with it
    # removed (as on a plain-http origin) there is none: the text is selected.
    context = browser.new_context(timezone_id="UTC")
    if clipboard == "removed":
        context.add_init_script("delete Navigator.prototype.clipboard;")
    page = context.new_page()
    sign_up(page, server)
    create_calendar(page)
    if clipboard == "removed":
        assert page.evaluate("navigator.clipboard === undefined")
    url = generate(page)

    panel = dialog(page).get_by_role("tabpanel", name="One Time Link")
    panel.get_by_role("button", name="Copy").click()
    expect(panel.locator(".copy-feedback")).to_have_text(
        re.compile(r"^(Copied!|Selected: press (Ctrl\+C|⌘C) to copy\.)$")
    )
    field = panel.get_by_role("textbox", name="One-time link", exact=True)
    expect(field).to_be_focused()
    selected = field.evaluate("f => f.value.slice(f.selectionStart, f.selectionEnd)")
    assert selected == url

    # The multi-line embed code is selected whole too.
    select_tab(page, "Embed Code")
    embed = dialog(page).get_by_role("tabpanel", name="Embed Code")
    embed.get_by_role("button", name="Copy").first.click()
    expect(embed.locator(".copy-feedback").first).not_to_be_empty()
    code = embed.get_by_role("textbox", name="Inline", exact=True)
    expect(code).to_be_focused()
    assert code.evaluate(
        "f => f.selectionStart === 0 && f.selectionEnd === f.value.length && f.value.length > 0"
    )
    context.close()


def test_a_long_expired_message_is_counted_and_refused_never_cut(
    browser: Browser, server: LiveServer
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_up(page, server)
    page.goto(f"{server.url}/dashboard/profile")
    message = page.get_by_label("Message on the expired-link page (optional)")
    count = page.locator("#expired_message-count")
    expect(message).to_have_accessible_description(re.compile(r"0 / 500"))

    text = " ".join(f"Sentence {n} of the message." for n in range(1, 25)) + " The last one."
    message.fill(text)
    # Pasted whole: nothing dropped at 500 by the browser.
    expect(message).to_have_value(text)
    expect(count).to_have_text(f"{len(text)} / 500: {len(text) - 500} too many")
    page.get_by_role("button", name="Save profile").click()

    expect(page.get_by_text(f"Up to 500 characters; this has {len(text)}.")).to_be_visible()
    expect(page.get_by_text("Profile saved.")).to_have_count(0)
    expect(message).to_have_value(text)
    message.fill(text[:486] + " The last one.")
    expect(count).to_have_text("500 / 500")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("Profile saved.")).to_be_visible()
    expect(message).to_have_value(text[:486] + " The last one.")
    context.close()
