"""Helpers for driving the embed widget on a host page of another site than the app."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Frame, Locator, Page

# Installed in every document before its own scripts run: the host page (the
# top window only) records each oncecal:* event, and every message it gets.
RECORDER = """
(() => {
  if (window !== window.top) return;
  const log = (window.__oncecal = { events: [], messages: [], calls: [] });
  const name = (el) => el.id || el.className || el.tagName;
  for (const type of ["ready", "resize", "slot_selected", "booked", "expired"]) {
    document.addEventListener("oncecal:" + type, (e) => {
      log.events.push({ type: e.type, detail: e.detail, target: name(e.target), bubbles: e.bubbles });
    });
  }
  window.addEventListener("message", (e) => {
    const frame = [...document.querySelectorAll("iframe")].find((f) => f.contentWindow === e.source);
    log.messages.push({ origin: e.origin, data: e.data, frame: frame ? frame.id || name(frame.parentElement) : null });
  });
})();
"""


def other_site(app_url: str) -> str:
    """Return the app's origin under the other host name: a different site, same server."""
    return app_url.replace("://127.0.0.1", "://localhost", 1)


def demo_host(
    app_url: str, inline: str | None = None, popup: str | None = None, theme: str | None = None
) -> str:
    """Return the URL of the app's demo host page, served on the other site."""
    params = {"inline": inline, "popup": popup, "theme": theme}
    query = "&".join(f"{k}={v}" for k, v in params.items() if v)
    return f"{other_site(app_url)}/demo/host?{query}"


def host_html(app_url: str, body: str) -> str:
    """Return a bare customer page holding ``body`` and the loader, as the embed code says."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Host</title></head>'
        f"<body>{body}"
        f'<script src="{app_url}/widget/embed.js" async></script></body></html>'
    )


def events(page: Page, type_: str | None = None, target: str | None = None) -> list[dict[str, Any]]:
    """Return the oncecal:* events the host page saw, optionally of one type and element."""
    return [
        e
        for e in page.evaluate("() => window.__oncecal.events")
        if (type_ is None or e["type"] == type_) and (target is None or e["target"] == target)
    ]


def wait_for_event(
    page: Page, type_: str, target: str | None = None, timeout: float = 10_000
) -> dict[str, Any]:
    """Wait until the host page saw the event ``type_`` on ``target``; return it."""
    found = page.wait_for_function(
        """([type, target]) => window.__oncecal && window.__oncecal.events.find(
             (e) => e.type === type && (!target || e.target === target))""",
        arg=[type_, target],
        timeout=timeout,
    )
    return found.json_value()


def record_on_calls(page: Page) -> None:
    """Register window.OnceCal.on handlers that record (message, element) calls."""
    page.wait_for_function("() => window.OnceCal && typeof window.OnceCal.on === 'function'")
    page.evaluate(
        """() => ["ready", "slot_selected", "booked", "expired"].forEach((type) =>
             window.OnceCal.on(type, (message, element) => window.__oncecal.calls.push({
               type, message, target: element.id || element.className, isElement: element instanceof Element })))"""
    )


def frame_in(iframe: Locator) -> Frame:
    """Return the Playwright frame shown by an <iframe>."""
    frame = iframe.element_handle().content_frame()
    assert frame is not None
    return frame


MEASURE = """() => ({
  body: document.body.getBoundingClientRect().height,
  scroll: document.documentElement.scrollHeight,
  ready: document.readyState,
})"""


def wait_until_fits(iframe: Locator, timeout: float = 10.0, tolerance: float = 3) -> int:
    """Wait until the iframe is as tall as its content, with nothing to scroll; return its height.

    The frame's body is as tall as its content, so it is the measure; the
    document's scrollHeight above the iframe's height would mean a cut-off
    frame or an inner scrollbar. The fit must hold on three samples in a row.
    """
    deadline = time.monotonic() + timeout
    last: tuple[int, dict[str, Any]] | None = None
    streak = 0
    while True:
        try:
            outer = iframe.evaluate("f => f.clientHeight")
            inner = frame_in(iframe).evaluate(MEASURE)
        except PlaywrightError:  # the frame is navigating
            inner = None
        if inner is not None:
            fits = (
                inner["ready"] == "complete"
                and abs(outer - inner["body"]) <= tolerance
                and inner["scroll"] <= outer + 2
            )
            streak = streak + 1 if fits and last is not None and last[0] == outer else 0
            last = (outer, inner)
            if streak >= 2:
                return outer
        if time.monotonic() > deadline:
            raise AssertionError(f"the frame does not fit its content: iframe {last and last[0]}px, {last}")
        time.sleep(0.1)


# In the host page: scroll so that a point of the frame (``y`` px from its top)
# is mid-viewport, then resolve once the frame held still for two animation frames.
STEADY_IN_HOST = """(frame, y) => new Promise((resolve) => {
  window.scrollTo({ top: scrollY + frame.getBoundingClientRect().top + y - innerHeight / 2, behavior: "instant" });
  let last = null, still = 0;
  (function sample() {
    const box = frame.getBoundingClientRect(), now = `${box.top},${box.left},${box.height}`;
    still = now === last ? still + 1 : 0;
    last = now;
    if (still >= 2) resolve(); else requestAnimationFrame(sample);
  })();
})"""


def click_in_frame(iframe: Locator, target: Locator) -> None:
    """Click ``target``, inside the cross-site ``iframe``, once it holds still in the host's view.

    Playwright scrolls an element of a cross-site frame into view from the
    frame's process; the host page's scroll lands later, from its own. On a
    busy machine it could land between the press and the release, which then
    fall on different elements and make no click (a radio's label left its
    radio unchecked). Scrolled from the host page first, and still for two
    animation frames, the target leaves Playwright nothing to scroll.
    """
    y = target.evaluate("el => { const r = el.getBoundingClientRect(); return r.top + r.height / 2; }")
    iframe.evaluate(STEADY_IN_HOST, y)
    target.click()
