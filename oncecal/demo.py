"""The demo: its owner and calendar (also seeded by the screenshot scripts) and its host page's URL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oncecal.services import calendars, links, owners
from oncecal.services.tokens import LinkKeys
from oncecal.urls import base_url

DEMO_EMAIL = "demo@oncecal.test"
DEMO_PASSWORD = "demo-password"
DEMO_EXPIRED_MESSAGE = (
    "Need another time? Reply to the email that brought you here and I will send a new link."
)
DEMO_CALENDAR: dict[str, Any] = {
    "name": "Intro call",
    "slug": "intro-call",
    "duration_minutes": 30,
    "timezone": "Europe/Berlin",
    "min_notice_minutes": 60,
    "buffer_minutes": 10,
    "location": "Video call (the link comes with your confirmation)",
    "weekly_hours": {str(d): [["09:00", "12:00"], ["13:00", "17:00"]] for d in range(5)},
}


@dataclass(frozen=True)
class Demo:
    calendar_slug: str
    token: str  # a one-time link to book once
    inline_token: str  # the host page's inline widget
    popup_token: str  # the host page's popup button


def seed_demo(keys: LinkKeys, now: datetime) -> Demo:
    """Make the demo owner and calendar unless they exist, and three fresh links on it."""
    owner = owners.owner_by_email(DEMO_EMAIL)
    if owner is None:
        owner = owners.create_owner(
            DEMO_EMAIL, "Dana Demo", DEMO_PASSWORD, "+1 555 0100", expired_message=DEMO_EXPIRED_MESSAGE
        )
    calendar = calendars.calendar_by_slug(DEMO_CALENDAR["slug"])
    if calendar is None:
        calendar = calendars.create_calendar(owner.id, **DEMO_CALENDAR)
    _link, token = links.issue_link(calendar, keys, now=now, label="Demo link", source="cli")
    _inline, inline_token = links.issue_link(
        calendar, keys, now=now, label="Demo embed (inline)", source="cli"
    )
    _popup, popup_token = links.issue_link(calendar, keys, now=now, label="Demo embed (popup)", source="cli")
    return Demo(calendar.slug, token, inline_token, popup_token)


def demo_host_url(inline_token: str, popup_token: str) -> str:
    """Return the demo host page's URL on the other site of the app's base URL."""
    other = base_url().replace("://127.0.0.1", "://localhost", 1)
    return f"{other}/demo/host?inline={inline_token}&popup={popup_token}"
