"""The embed code a website owner pastes, and the origin rules of framing."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path

from flask import current_app
from markupsafe import Markup

from oncecal.urls import base_url

ORIGIN = re.compile(
    r"https?://(?:(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?"
)


def is_origin(text: str) -> bool:
    """Tell whether ``text`` is a bare web origin like https://example.com:8443 (ports 1-65535)."""
    match = ORIGIN.fullmatch(text)
    return match is not None and (match["port"] is None or 1 <= int(match["port"]) <= 65535)


def normalise_origin(text: str) -> str:
    """Lower-case an origin and drop a trailing slash."""
    return text.strip().rstrip("/").lower()


# The inline widget's reserved height, a booking page's first screen: the host
# page does not move when the frame appears, and a taller page grows below the
# fold (widget/README.md).
INLINE_RESERVED_PX = 720


@dataclass(frozen=True)
class EmbedCode:
    inline: str
    popup: str


def embed_code(url: str, label: str = "Book a time") -> EmbedCode:
    """Return the inline and popup snippets for a booking page URL."""
    script = f'<script src="{escape(base_url())}/widget/embed.js" async></script>'
    return EmbedCode(
        inline=f'<div class="oncecal-inline" data-url="{escape(url)}" style="min-height:{INLINE_RESERVED_PX}px"></div>\n{script}',
        popup=f'<button type="button" data-oncecal-popup="{escape(url)}">{escape(label)}</button>\n{script}',
    )


@dataclass(frozen=True)
class FrameStylesheet:
    text: Markup
    source: str  # its Content-Security-Policy source, 'sha256-...'


@cache
def _read_frame_stylesheet(static_folder: str) -> FrameStylesheet:
    path = Path(static_folder) / "app.css"
    css = path.read_text(encoding="utf-8")
    if "</" in css:  # would end the <style> element early
        raise ValueError(f"{path} holds '</', which cannot go inside a <style> element")
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return FrameStylesheet(Markup(css), f"'sha256-{digest}'")


def frame_stylesheet() -> FrameStylesheet:
    """Return static/app.css as a page in a frame carries it: inline, with its CSP hash.

    Chromium lays out a cross-site frame's document before a linked
    stylesheet is in (it shows it only once it is), then counts the restyle
    as a layout shift in the frame, which Lighthouse adds to the host page's;
    inline, the first layout is the one shown (widget/README.md). Read once
    per process, so a page and its Content-Security-Policy always name the
    same text.
    """
    return _read_frame_stylesheet(current_app.static_folder or "static")


def frame_ancestors(allowed: list[str]) -> str | None:
    """Return the CSP frame-ancestors value for a calendar, or None for any site."""
    if not allowed:
        return None
    return "frame-ancestors 'self' " + " ".join(allowed)


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Tell whether a page at origin ``host`` may embed a calendar."""
    return not allowed or normalise_origin(host) in allowed
