"""Read the booking form out of a rendered page, as a browser without JS would."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape


@dataclass
class BookingPage:
    csrf_token: str
    slots: list[str]
    timezone: str

    @classmethod
    def parse(cls, html: str) -> BookingPage:
        csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
        tz = re.search(r'name="timezone" value="([^"]+)"', html)
        slots = re.findall(r'name="slot" id="[^"]+" value="([^"]+)"', html)
        if csrf is None or tz is None:
            raise AssertionError("no booking form on this page")
        return cls(unescape(csrf.group(1)), slots, unescape(tz.group(1)))

    def form(self, slot: str | None = None, **fields: str) -> dict[str, str]:
        """Return the POST body of this form with the first (or given) slot chosen."""
        return {
            "csrf_token": self.csrf_token,
            "slot": slot if slot is not None else self.slots[0],
            "name": "Ivy Invitee",
            "email": "ivy@example.com",
            "timezone": self.timezone,
            **fields,
        }
