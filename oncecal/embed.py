"""The embed code a website owner pastes, and the origin rules of framing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

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


def frame_ancestors(allowed: list[str]) -> str | None:
    """Return the CSP frame-ancestors value for a calendar, or None for any site."""
    if not allowed:
        return None
    return "frame-ancestors 'self' " + " ".join(allowed)


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Tell whether a page at origin ``host`` may embed a calendar."""
    return not allowed or normalise_origin(host) in allowed
