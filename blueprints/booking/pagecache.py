"""A link's booking page, rendered once per calendar state and filled in per link.

A campaign hands thousands of one-time links of one calendar to invitees who
click within minutes; their pages differ only in the link's token, the form
id and the prefilled name and email. The page is rendered with markers in
those places and kept, per process, under a key of everything else it shows
(the calendar's row, whose bookings_revision rises with every booking, move
and cancel on it; the owner's row; the minute; the zone, the clock and the
embed options); each request fills in its own values. The kept text never
holds a token or a form id, only markers. A kept page can never make a
double booking: the POST checks the slot again in its transaction.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

import sqlalchemy as sa
from flask import current_app
from markupsafe import escape

from oncecal.extensions import Model

_MARK = secrets.token_hex(8)
TOKEN = f"oncecal-token-{_MARK}"
FORM_ID = f"oncecal-form-id-{_MARK}"
NAME = f"oncecal-name-{_MARK}"
EMAIL = f"oncecal-email-{_MARK}"
Page = TypeVar("Page")
_MARKERS = re.compile("(" + "|".join(map(re.escape, (TOKEN, FORM_ID, NAME, EMAIL))) + ")")


def next_minute(now: datetime) -> datetime:
    """Round up to the minute: a kept page is computed as of the end of its minute.

    Computing a little ahead only drops slots early; it never offers one
    that the booking itself would refuse as too soon.
    """
    floor = now.replace(second=0, microsecond=0)
    return floor if floor == now else floor + timedelta(minutes=1)


def row_state(row: Model) -> str:
    """Return every column value of a model row, as text: a key that changes with any edit."""
    mapper = sa.inspect(row).mapper
    return repr(tuple(getattr(row, attr.key) for attr in mapper.column_attrs))


@dataclass(frozen=True)
class MarkedPage:
    """A rendered page as UTF-8, cut at its markers: ``texts`` with a marker between each two."""

    texts: tuple[bytes, ...]
    markers: tuple[str, ...]

    @classmethod
    def of(cls, page: str) -> MarkedPage:
        parts = _MARKERS.split(page)
        return cls(tuple(text.encode() for text in parts[0::2]), tuple(parts[1::2]))


def fill(page: MarkedPage, *, token: str, form_id: str, name: str, email: str) -> bytes:
    """Put one request's values where the markers are: one pass, and the page is never encoded again."""
    values = {
        TOKEN: token.encode(),
        FORM_ID: form_id.encode(),
        NAME: str(escape(name)).encode(),
        EMAIL: str(escape(email)).encode(),
    }
    pieces = [page.texts[0]]
    for marker, text in zip(page.markers, page.texts[1:], strict=True):
        pieces += (values[marker], text)
    return b"".join(pieces)


class PageCache(Generic[Page]):
    """A small least-recently-used map from page keys to rendered pages."""

    def __init__(self, size: int = 256) -> None:
        self._pages: OrderedDict[Hashable, Page] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self.renders = 0

    def get_or_render(self, key: Hashable, render: Callable[[], Page]) -> Page:
        """Return the page kept under ``key``, rendering and keeping it if there is none."""
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
                return page
        page = render()
        with self._lock:
            self.renders += 1
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)
        return page


def pages() -> PageCache[MarkedPage]:
    """Return this app's page cache (one per app, so tests with many apps never share)."""
    cache: PageCache[MarkedPage] = current_app.extensions.setdefault("oncecal.booking_pages", PageCache())
    return cache
