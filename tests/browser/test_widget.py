"""The embed widget on a host page of ANOTHER site than the app, in Debian's Chromium.

The app answers on http://127.0.0.1:<port>; host pages are opened as
http://localhost:<port>/..., a different site, so the booking frame is a
cross-site iframe where Chromium blocks third-party cookies and Web Storage
(its default here, left as it is).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Response, make_response, request
from playwright.sync_api import Browser, BrowserContext, FrameLocator, Locator, Page, expect

from oncecal.extensions import db
from oncecal.models import Owner
from tests.browser.conftest import OWNER_EMAIL, OWNER_NAME
from tests.conftest import MakeCalendar, MakeLink, MakeOwner
from tests.support.embedding import (
    RECORDER,
    click_in_frame,
    demo_host,
    events,
    frame_in,
    host_html,
    other_site,
    record_on_calls,
    wait_for_event,
    wait_until_fits,
)
from tests.support.live import LiveServer

pytestmark = pytest.mark.browser

# Mornings only: a booking page of a sensible height, and tomorrow's times are hours ahead.
MORNINGS = {str(d): [["09:00", "12:00"]] for d in range(7)}
NewLink = Callable[..., str]
HostPage = Callable[[Page, str], None]


@pytest.fixture
def new_link(
    server: LiveServer, make_owner: MakeOwner, make_calendar: MakeCalendar, make_link: MakeLink
) -> NewLink:
    """Return a function giving the URL of a fresh one-time link on a calendar of its own."""
    with server.app.app_context():
        owner_id = make_owner(name=OWNER_NAME, email=OWNER_EMAIL).id

    def make(**calendar_fields: object) -> str:
        with server.app.app_context():
            calendar = make_calendar(
                owner=db.session.get_one(Owner, owner_id),
                name="Consultation",
                **{"timezone": "UTC", "weekly_hours": MORNINGS, "min_notice_minutes": 0, **calendar_fields},
            )
            _link, token = make_link(calendar)
        return f"{server.url}/l/{token}"

    return make


@pytest.fixture
def host_page(server: LiveServer) -> HostPage:
    """Return a function that opens a customer page holding ``body`` on the other site.

    The page comes from a route of this test's app only: a page.route answer
    would count as a public address, which Chromium's Private Network Access
    rules forbid to load the loader from loopback.
    """
    pages: list[str] = []

    def serve(number: int) -> Response:
        response = make_response(pages[number])
        # The customer's own policy lets OnceCal's script and frames in.
        response.headers["Content-Security-Policy"] = f"script-src {server.url}; frame-src {server.url}"
        return response

    server.app.add_url_rule("/test-host/<int:number>", "test_host", serve)

    def open_page(page: Page, body: str) -> None:
        pages.append(host_html(server.url, body))
        page.goto(f"{other_site(server.url)}/test-host/{len(pages) - 1}")

    return open_page


OpenTab = Callable[..., Page]


@pytest.fixture
def open_tab(browser: Browser) -> Iterator[OpenTab]:
    """Return a function opening a browser tab of a size, in UTC, that records what the host page hears."""
    contexts: list[BrowserContext] = []

    def open_(width: int, height: int, *init_scripts: str) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height}, timezone_id="UTC")
        for script in (RECORDER, *init_scripts):
            context.add_init_script(script)
        contexts.append(context)
        return context.new_page()

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def tab(open_tab: OpenTab) -> Page:
    """A desktop browser tab in UTC that records what the host page hears."""
    return open_tab(1280, 900)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def pick_slot(frame: FrameLocator, nth: int = 0) -> str:
    """Choose a time of the second day shown; return the slot's value."""
    label = frame.locator(".day").nth(1).locator("label.slot").nth(nth)
    start = label.get_attribute("data-start")
    assert start is not None
    click_in_frame(frame.owner, label)
    expect(frame.locator(f'input[name="slot"][value="{start}"]')).to_be_checked()
    return start


def fill_in(frame: FrameLocator, name: str = "Ivy Invitee", email: str = "ivy@example.com") -> None:
    frame.get_by_label("Your name").fill(name)
    frame.get_by_label("Email").fill(email)


def confirm(page: Page, frame: FrameLocator) -> int:
    """Press "Confirm booking" in the frame; return the status of the POST."""
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        frame.get_by_role("button", name="Confirm booking").click()
    return posted.value.status


def plus_minutes(iso: str, minutes: int) -> str:
    start = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_iframe(page: Page, id_: str, src: str) -> None:
    page.evaluate(
        """([id, src]) => {
             const f = document.createElement("iframe");
             f.id = id; f.src = src;
             document.body.append(f);
           }""",
        [id_, src],
    )


def wait_for_error_page(page: Page, selector: str) -> None:
    """Wait until the <iframe> shows Chromium's error page: the frame was refused."""
    deadline = time.monotonic() + 10
    while frame_in(page.locator(selector)).url != "chrome-error://chromewebdata/":
        assert time.monotonic() < deadline, frame_in(page.locator(selector)).url
        time.sleep(0.05)


def test_inline_widget_books_resizes_and_shows_expired_on_reload(
    tab: Page, server: LiveServer, new_link: NewLink
) -> None:
    link = new_link()
    tab.goto(demo_host(server.url, inline=token_of(link)))
    iframe = tab.locator(".oncecal-inline iframe")
    frame = tab.frame_locator(".oncecal-inline iframe")
    expect(iframe).to_have_count(1)
    src = urlsplit(iframe.get_attribute("src") or "")
    assert f"{src.scheme}://{src.netloc}{src.path}" == link
    assert parse_qs(src.query) == {"embed": ["1"], "host": [other_site(server.url)], "tz": ["UTC"]}

    ready = wait_for_event(tab, "oncecal:ready", "oncecal-inline")
    assert ready["detail"] == {"source": "oncecal", "type": "ready"}
    assert ready["bubbles"]
    record_on_calls(tab)
    expect(frame.get_by_role("button", name="Confirm booking")).to_be_visible()
    form_height = wait_until_fits(iframe)

    start = pick_slot(frame)
    selected = wait_for_event(tab, "oncecal:slot_selected", "oncecal-inline")
    assert selected["detail"] == {"source": "oncecal", "type": "slot_selected", "start": start}

    # A bad email past the browser's own checks: 400 with field errors, and a taller frame.
    frame.locator("form.booking-form").evaluate("form => { form.noValidate = true; }")
    fill_in(frame, email="not-an-email")
    assert confirm(tab, frame) == 400
    expect(frame.locator("#email-error")).to_be_visible()
    expect(frame.locator(f'input[name="slot"][value="{start}"]')).to_be_checked()
    error_height = wait_until_fits(iframe)
    assert error_height > form_height

    frame.get_by_label("Email").fill("ivy@example.com")
    assert confirm(tab, frame) == 303
    expect(frame.get_by_role("heading", name="You are booked")).to_be_visible()
    booked = wait_for_event(tab, "oncecal:booked", "oncecal-inline")["detail"]
    state = frame.locator("[data-oncecal-state=booked]")
    assert booked == {
        "source": "oncecal",
        "type": "booked",
        "booking": {
            "ref": state.get_attribute("data-booking-ref"),
            "start": start,
            "end": plus_minutes(start, 30),
            "timezone": "UTC",
        },
    }
    assert booked["booking"]["ref"]
    # The confirmation is shorter than the form: the frame shrinks to it.
    assert wait_until_fits(iframe) < form_height

    calls = tab.evaluate("() => window.__oncecal.calls")
    assert {
        "type": "slot_selected",
        "message": selected["detail"],
        "target": "oncecal-inline",
        "isElement": True,
    } in calls
    assert {"type": "booked", "message": booked, "target": "oncecal-inline", "isElement": True} in calls

    with tab.expect_response(lambda r: r.url.startswith(link)) as reopened:
        tab.reload()
    assert reopened.value.status == 410
    expect(frame.get_by_role("heading", name="This link has expired")).to_be_visible()
    expect(frame.locator("[data-oncecal-state=expired]")).to_contain_text(f"Please contact {OWNER_NAME}")
    expired = wait_for_event(tab, "oncecal:expired", "oncecal-inline")
    assert expired["detail"] == {"source": "oncecal", "type": "expired"}
    wait_until_fits(iframe)
    assert events(tab, "oncecal:booked") == []


def open_demo_host_with_popup(tab: Page, server: LiveServer, new_link: NewLink) -> tuple[Locator, Locator]:
    """Open the demo host page with an inline widget and a popup button; return the button and the dialog."""
    tab.goto(demo_host(server.url, inline=token_of(new_link()), popup=token_of(new_link())))
    return tab.get_by_role("button", name="Book a time"), tab.get_by_role("dialog")


def test_popup_opens_books_and_closes_by_esc_close_button_and_outside_click(
    tab: Page, server: LiveServer, new_link: NewLink
) -> None:
    button, dialog = open_demo_host_with_popup(tab, server, new_link)
    frame = tab.frame_locator("[role=dialog] iframe")
    expect(dialog).to_have_count(0)

    # Esc with the focus on the dialog's close button.
    button.click()
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(dialog.get_by_role("button", name="Close")).to_be_focused()
    wait_for_event(tab, "oncecal:ready", "popup-button")
    tab.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(button).to_be_focused()

    # Esc with the focus inside the cross-site frame, where the host page cannot hear keys.
    button.click()
    pick_slot(frame)
    assert tab.evaluate("() => document.activeElement.tagName") == "IFRAME"
    tab.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(button).to_be_focused()

    # The close button.
    button.click()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)
    expect(button).to_be_focused()

    # A click inside the dialog keeps it; a click beside it, on the overlay, closes it.
    button.click()
    dialog.click(position={"x": 10, "y": 10})
    expect(dialog).to_be_visible()
    tab.mouse.click(20, 450)
    expect(dialog).to_have_count(0)
    expect(button).to_be_focused()

    # Booking inside the popup.
    before = len(events(tab, "oncecal:ready", "popup-button"))
    button.click()
    tab.wait_for_function(
        "n => window.__oncecal.events.filter(e => e.type === 'oncecal:ready' && e.target === 'popup-button').length > n",
        arg=before,
    )
    iframe = tab.locator("[role=dialog] iframe")
    form_height = wait_until_fits(iframe)
    start = pick_slot(frame, nth=1)
    fill_in(frame)
    assert confirm(tab, frame) == 303
    expect(frame.get_by_role("heading", name="You are booked")).to_be_visible()
    booked = wait_for_event(tab, "oncecal:booked", "popup-button")["detail"]
    assert booked["booking"]["start"] == start
    assert wait_until_fits(iframe) < form_height
    assert events(tab, "oncecal:booked", "oncecal-inline") == []
    tab.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(button).to_be_focused()


def test_popup_keeps_focus_inside_locks_the_host_scroll_and_restores_both(
    tab: Page, server: LiveServer, new_link: NewLink
) -> None:
    button, dialog = open_demo_host_with_popup(tab, server, new_link)
    close = dialog.get_by_role("button", name="Close")
    # Room to scroll on the host page: a page that ends with the widget could not.
    tab.evaluate("() => { document.body.style.paddingBottom = '3000px'; scrollTo(0, 40); }")
    button.click()
    wait_for_event(tab, "oncecal:ready", "popup-button")
    expect(close).to_be_focused()
    in_dialog = "() => !!document.activeElement.closest('[role=dialog]')"

    # Backwards from the close button: into the booking frame, not the page behind.
    tab.keyboard.press("Shift+Tab")
    assert tab.evaluate(in_dialog)
    assert tab.evaluate("() => document.activeElement.tagName") == "IFRAME"
    # Forwards through the whole frame: back to the close button, never the host page.
    tab.keyboard.press("Tab")
    for _ in range(60):
        assert tab.evaluate(in_dialog), tab.evaluate("() => document.activeElement.outerHTML.slice(0, 80)")
        if tab.evaluate("() => document.activeElement.getAttribute('aria-label')") == "Close":
            break
        tab.keyboard.press("Tab")
    expect(close).to_be_focused()

    # The host page stays where it was under the overlay, whatever scrolls.
    tab.mouse.move(20, 450)
    tab.mouse.wheel(0, 600)
    tab.keyboard.press("End")
    tab.wait_for_timeout(300)
    assert tab.evaluate("() => scrollY") == 40
    tab.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(button).to_be_focused()
    assert tab.evaluate("() => scrollY") == 40
    # ... and scrolls again once the popup is closed.
    tab.mouse.wheel(0, 600)
    tab.wait_for_function("() => scrollY > 40")


def test_on_a_phone_the_popup_close_button_stays_in_view(
    open_tab: OpenTab, server: LiveServer, new_link: NewLink
) -> None:
    tab = open_tab(320, 640)
    tab.goto(demo_host(server.url, popup=token_of(new_link())))
    tab.get_by_role("button", name="Book a time").click()
    dialog = tab.get_by_role("dialog")
    close = dialog.get_by_role("button", name="Close")
    wait_for_event(tab, "oncecal:ready", "popup-button")
    wait_until_fits(tab.locator("[role=dialog] iframe"))
    expect(close).to_be_in_viewport(ratio=1)
    # Down the booking page, far past the top of the dialog: the close button is still there.
    tab.mouse.move(160, 400)
    tab.mouse.wheel(0, 1500)
    tab.wait_for_function("() => document.querySelector('[role=dialog]').getBoundingClientRect().top < -1000")
    expect(close).to_be_in_viewport(ratio=1)
    close.click()
    expect(dialog).to_have_count(0)


# Installed in every document, the host page's and the frame's: Lighthouse
# counts the shifts inside a frame too, so a frame's page must hold still as well.
LAYOUT_SHIFT = """
window.__shift = 0;
new PerformanceObserver((list) => list.getEntries().forEach((e) => { if (!e.hadRecentInput) window.__shift += e.value; }))
  .observe({ type: "layout-shift", buffered: true });
"""


@pytest.mark.parametrize("viewport", [(1350, 940), (412, 823)], ids=["desktop", "phone"])
def test_the_inline_widget_costs_the_host_page_at_most_005_of_layout_shift(
    open_tab: OpenTab, server: LiveServer, new_link: NewLink, viewport: tuple[int, int]
) -> None:
    # The frame's page has its HTML well before the stylesheet it names, as on
    # a slow network. Chromium lays out a cross-site frame's document without
    # waiting for its stylesheets (it shows it only once they are in), and
    # counts the restyle as a shift of the whole frame.
    def slow_stylesheet() -> None:
        if request.path == "/static/app.css":
            time.sleep(1)

    server.app.before_request(slow_stylesheet)
    # OnceCal's default hours: a booking page taller than a screen, as most are.
    link = new_link(weekly_hours={str(d): [["09:00", "17:00"]] for d in range(7)})
    tab = open_tab(*viewport, LAYOUT_SHIFT)
    tab.goto(demo_host(server.url, inline=token_of(link)))
    iframe = tab.locator(".oncecal-inline iframe")
    wait_for_event(tab, "oncecal:ready", "oncecal-inline")
    wait_until_fits(iframe)
    # The light bars shown while loading are gone once the booking page is there.
    assert iframe.evaluate("f => getComputedStyle(f).backgroundImage") == "none"
    # Styled: a stylesheet refused by the page's policy would leave nothing to shift.
    assert "system-ui" in frame_in(iframe).evaluate("() => getComputedStyle(document.body).fontFamily")
    tab.wait_for_timeout(500)  # layout shifts are reported after the frame that made them
    host = tab.evaluate("() => window.__shift")
    # The frame's own score, as if the frame filled the screen: never less than
    # what it adds to the host page's (Lighthouse weighs it by the frame's share of the screen).
    inside = frame_in(iframe).evaluate("() => window.__shift")
    assert host + inside <= 0.05, f"layout shift: host page {host:.3f}, inside the frame {inside:.3f}"


FAKE_SENDER = """<!doctype html><title>Not OnceCal</title><script>
  const fake = { source: "oncecal" };
  parent.postMessage({ ...fake, type: "ready" }, "*");
  parent.postMessage({ ...fake, type: "resize", height: 7 }, "*");
  parent.postMessage({ ...fake, type: "booked", booking: { ref: "x", start: "2030-01-01T09:00:00Z",
    end: "2030-01-01T09:30:00Z", timezone: "UTC" } }, "*");
  parent.postMessage({ ...fake, type: "expired" }, "*");
  parent.postMessage({ marker: location.origin }, "*");
</script>"""


def test_messages_from_other_windows_fire_nothing(tab: Page, server: LiveServer, new_link: NewLink) -> None:
    # A page on another origin, and one on OnceCal's own origin that is not the widget's frame.
    tab.route("http://evil.test/**", lambda route: route.fulfill(content_type="text/html", body=FAKE_SENDER))
    tab.route(
        f"{server.url}/not-the-widget",
        lambda route: route.fulfill(content_type="text/html", body=FAKE_SENDER),
    )
    tab.goto(demo_host(server.url, inline=token_of(new_link())))
    iframe = tab.locator(".oncecal-inline iframe")
    wait_for_event(tab, "oncecal:ready", "oncecal-inline")
    height = wait_until_fits(iframe)

    tab.evaluate(
        """() => {
             window.postMessage({ source: "oncecal", type: "booked", booking: { ref: "x" } }, "*");
             window.postMessage({ source: "oncecal", type: "resize", height: 7 }, "*");
             window.postMessage({ marker: "self" }, "*");
           }"""
    )
    add_iframe(tab, "evil", "http://evil.test/fake")
    add_iframe(tab, "same-origin", f"{server.url}/not-the-widget")
    tab.wait_for_function(
        "markers => markers.every(m => window.__oncecal.messages.some(x => x.data && x.data.marker === m))",
        arg=["self", "http://evil.test", server.url],
    )
    fakes = [m for m in tab.evaluate("() => window.__oncecal.messages") if m["data"].get("type") == "booked"]
    assert {m["origin"] for m in fakes} == {other_site(server.url), "http://evil.test", server.url}

    assert [e["type"] for e in events(tab) if e["type"] != "oncecal:resize"] == ["oncecal:ready"]
    assert all(e["detail"]["height"] != 7 for e in events(tab, "oncecal:resize"))
    assert all(e["target"] == "oncecal-inline" for e in events(tab))
    assert wait_until_fits(iframe) == height

    # The widget's own frame, once navigated to another origin (a link followed inside it).
    frame_in(iframe).goto("http://evil.test/inside")
    tab.wait_for_function(
        """() => window.__oncecal.messages.some(
             m => m.frame === "oncecal-inline" && m.data.marker === "http://evil.test")"""
    )
    assert [e["type"] for e in events(tab) if e["type"] != "oncecal:resize"] == ["oncecal:ready"]
    assert all(e["detail"]["height"] != 7 for e in events(tab, "oncecal:resize"))
    assert iframe.evaluate("f => f.clientHeight") == height


def test_a_calendar_listing_origins_cannot_be_framed_elsewhere(
    tab: Page, server: LiveServer, new_link: NewLink
) -> None:
    link = new_link(embed_origins=["http://example.test"])
    ancestors = "frame-ancestors 'self' http://example.test"
    with tab.expect_response(lambda r: r.url.startswith(link)) as framed:
        tab.goto(demo_host(server.url, inline=token_of(link)))
    assert framed.value.status == 403
    assert ancestors in directives(framed.value.headers["content-security-policy"])
    wait_for_error_page(tab, ".oncecal-inline iframe")
    expect(tab.frame_locator(".oncecal-inline iframe").locator("form")).to_have_count(0)

    # A hand-made frame claiming an allowed host gets the page, but the browser will not show it here.
    with tab.expect_response(lambda r: r.url.startswith(link)) as forged:
        add_iframe(tab, "forged", f"{link}?embed=1&host=http://example.test")
    assert forged.value.status == 200
    assert ancestors in directives(forged.value.headers["content-security-policy"])
    wait_for_error_page(tab, "#forged")
    expect(tab.frame_locator("#forged").locator("form")).to_have_count(0)
    assert events(tab) == []
    assert [m for m in tab.evaluate("() => window.__oncecal.messages") if m["data"].get("source")] == []

    # Once this host page's origin is listed too, the widget shows here. (A page
    # on example.test itself could not load the app from loopback: Chromium's
    # Private Network Access rules.)
    host = other_site(server.url)
    listed = new_link(embed_origins=["http://example.test", host])
    with tab.expect_response(lambda r: r.url.startswith(listed)) as allowed:
        tab.goto(demo_host(server.url, inline=token_of(listed)))
    assert allowed.value.status == 200
    assert f"{ancestors} {host}" in directives(allowed.value.headers["content-security-policy"])
    expect(
        tab.frame_locator(".oncecal-inline iframe").get_by_role("button", name="Confirm booking")
    ).to_be_visible()
    wait_for_event(tab, "oncecal:ready", "oncecal-inline")


def directives(policy: str) -> list[str]:
    return [d.strip() for d in policy.split(";")]


def test_the_frame_posts_only_to_the_host_origin_it_was_given(
    tab: Page, server: LiveServer, new_link: NewLink
) -> None:
    link = new_link()
    tab.goto(demo_host(server.url))
    add_iframe(tab, "told-evil", f"{link}?embed=1&host=http://evil.test")
    add_iframe(tab, "told-us", f"{link}?embed=1&host={other_site(server.url)}")

    tab.wait_for_function(
        "() => window.__oncecal.messages.some(m => m.frame === 'told-us' && m.data.type === 'ready')"
    )
    evil = frame_in(tab.locator("#told-evil"))
    expect(tab.frame_locator("#told-evil").get_by_role("button", name="Confirm booking")).to_be_visible()
    evil.wait_for_function("() => document.readyState === 'complete'")
    assert evil.evaluate("() => document.documentElement.dataset.host") == "http://evil.test"
    # Messages from one window arrive in order: once this one is in, any earlier one would be too.
    evil.evaluate("() => parent.postMessage({ marker: 'evil-frame-done' }, '*')")
    tab.wait_for_function("() => window.__oncecal.messages.some(m => m.data.marker === 'evil-frame-done')")

    messages = tab.evaluate("() => window.__oncecal.messages")
    assert [m["data"] for m in messages if m["frame"] == "told-evil"] == [{"marker": "evil-frame-done"}]
    assert {m["origin"] for m in messages if m["frame"] == "told-us"} == {server.url}
    # Hand-made frames are no widgets: the loader dispatches nothing for them.
    assert events(tab) == []


def test_prefill_and_theme_reach_the_form(tab: Page, host_page: HostPage, new_link: NewLink) -> None:
    host_page(
        tab,
        f'<div id="dark" class="oncecal-inline" data-url="{new_link()}" data-prefill-name="Ada Lovelace"'
        ' data-prefill-email="ada@example.com" data-theme="dark"></div>'
        f'<div id="plain" class="oncecal-inline" data-url="{new_link()}"></div>',
    )
    dark = tab.frame_locator("#dark iframe")
    expect(dark.locator("input[name=name]")).to_have_value("Ada Lovelace")
    expect(dark.locator("input[name=email]")).to_have_value("ada@example.com")
    expect(dark.locator("html")).to_have_attribute("data-theme", "dark")
    # Its iframe shares the frame's color scheme: a different one would paint the frame opaque.
    assert tab.locator("#dark iframe").evaluate("f => getComputedStyle(f).colorScheme") == "dark"

    plain = tab.frame_locator("#plain iframe")
    expect(plain.locator("input[name=name]")).to_have_value("")
    expect(plain.locator("input[name=email]")).to_have_value("")
    expect(plain.locator("html")).not_to_have_attribute("data-theme", "dark")
    assert tab.locator("#plain iframe").evaluate("f => getComputedStyle(f).colorScheme") == "light dark"


def test_several_widgets_on_one_page_and_one_added_later(
    tab: Page, host_page: HostPage, new_link: NewLink
) -> None:
    host_page(
        tab,
        f'<div id="first" class="oncecal-inline" data-url="{new_link()}"></div>'
        f'<div id="second" class="oncecal-inline" data-url="{new_link()}" data-theme="light"></div>'
        f'<button id="third" data-oncecal-popup="{new_link()}">Book a call</button>',
    )
    expect(tab.locator("iframe")).to_have_count(2)
    for name in ("first", "second"):
        wait_for_event(tab, "oncecal:ready", name)
    first_height = wait_until_fits(tab.locator("#first iframe"))
    second_height = wait_until_fits(tab.locator("#second iframe"))

    second = tab.frame_locator("#second iframe")
    start = pick_slot(second)
    fill_in(second)
    assert confirm(tab, second) == 303
    booked = wait_for_event(tab, "oncecal:booked", "second")
    assert booked["detail"]["booking"]["start"] == start
    assert wait_until_fits(tab.locator("#second iframe")) < second_height
    assert wait_until_fits(tab.locator("#first iframe")) == first_height
    assert [e["target"] for e in events(tab, "oncecal:slot_selected")] == ["second"]
    assert [e["target"] for e in events(tab, "oncecal:booked")] == ["second"]

    tab.get_by_role("button", name="Book a call").click()
    wait_for_event(tab, "oncecal:ready", "third")
    tab.keyboard.press("Escape")
    expect(tab.get_by_role("dialog")).to_have_count(0)

    # Added after load: a widget on its own, and one inside a bigger piece of page.
    late, nested = new_link(), new_link()
    tab.evaluate(
        """([late, nested]) => {
             const div = document.createElement("div");
             div.id = "late"; div.className = "oncecal-inline"; div.dataset.url = late;
             document.body.append(div);
             const section = document.createElement("section");
             section.innerHTML = `<p>More</p><div id="nested" class="oncecal-inline" data-url="${nested}"></div>`;
             document.body.append(section);
           }""",
        [late, nested],
    )
    for name in ("late", "nested"):
        expect(tab.locator(f"#{name} iframe")).to_have_count(1)
        wait_for_event(tab, "oncecal:ready", name)
        expect(
            tab.frame_locator(f"#{name} iframe").get_by_role("button", name="Confirm booking")
        ).to_be_visible()
        wait_until_fits(tab.locator(f"#{name} iframe"))
    # No widget got a second frame from the DOM changes.
    for name in ("first", "second", "late", "nested"):
        expect(tab.locator(f"#{name} iframe")).to_have_count(1)


def test_booking_works_although_the_frame_has_no_cookies_or_storage(
    browser: Browser, tab: Page, server: LiveServer, new_link: NewLink
) -> None:
    write_and_read = """() => {
      document.cookie = "probe=1; SameSite=None; Secure; Path=/";
      let storage = "usable";
      try { sessionStorage.setItem("probe", "1"); } catch (e) { storage = e.name; }
      return { cookie: document.cookie, storage };
    }"""
    # The same writes stick on the app's site when it is the top-level page...
    first_party = browser.new_context()
    top = first_party.new_page()
    top.goto(f"{server.url}/healthz")
    assert top.evaluate(write_and_read) == {"cookie": "probe=1", "storage": "usable"}
    first_party.close()

    # ... but not in the cross-site frame.
    tab.goto(demo_host(server.url, inline=token_of(new_link())))
    wait_for_event(tab, "oncecal:ready", "oncecal-inline")
    inner = frame_in(tab.locator(".oncecal-inline iframe"))
    assert inner.evaluate(write_and_read) == {"cookie": "", "storage": "SecurityError"}

    frame = tab.frame_locator(".oncecal-inline iframe")
    start = pick_slot(frame)
    fill_in(frame)
    assert confirm(tab, frame) == 303
    expect(frame.get_by_role("heading", name="You are booked")).to_be_visible()
    assert wait_for_event(tab, "oncecal:booked", "oncecal-inline")["detail"]["booking"]["start"] == start
    assert tab.context.cookies(server.url) == []


def test_on_a_phone_the_confirmation_shows_from_its_top(
    open_tab: OpenTab, server: LiveServer, new_link: NewLink
) -> None:
    tab = open_tab(375, 740)
    tab.goto(demo_host(server.url, inline=token_of(new_link()), popup=token_of(new_link())))
    top_of = "el => el.getBoundingClientRect().top"

    # In the popup: the confirm button is far down the overlay; the confirmation starts at its top.
    tab.get_by_role("button", name="Book a time").click()
    dialog = tab.get_by_role("dialog")
    frame = tab.frame_locator("[role=dialog] iframe")
    wait_for_event(tab, "oncecal:ready", "popup-button")
    iframe = tab.locator("[role=dialog] iframe")
    wait_until_fits(iframe)
    assert dialog.evaluate("el => el.getBoundingClientRect().right") <= 375
    assert frame_in(iframe).evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    pick_slot(frame)
    fill_in(frame)
    assert confirm(tab, frame) == 303
    wait_for_event(tab, "oncecal:booked", "popup-button")
    wait_until_fits(iframe)
    expect(dialog.get_by_role("button", name="Close")).to_be_in_viewport()
    assert dialog.evaluate(top_of) > -1
    tab.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    # Inline: the host page scrolls back up to the frame's new page.
    inline = tab.frame_locator(".oncecal-inline iframe")
    iframe = tab.locator(".oncecal-inline iframe")
    pick_slot(inline)
    fill_in(inline)
    assert confirm(tab, inline) == 303
    wait_for_event(tab, "oncecal:booked", "oncecal-inline")
    wait_until_fits(iframe)
    expect(inline.get_by_role("heading", name="You are booked")).to_be_in_viewport()
    assert -1 < iframe.evaluate(top_of) < 740
