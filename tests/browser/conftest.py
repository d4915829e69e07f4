"""Fixtures for driving the real app through Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ALL_DAY, MakeCalendar, MakeLink, MakeOwner
from tests.support.live import CHROMIUM, CHROMIUM_ARGS, LiveServer, live_server

OWNER_NAME = "Olivia Owner"
OWNER_EMAIL = "olivia.owner@example.com"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Launch Debian's Chromium instead of a Playwright download."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """The app on a fresh SQLite file, answering on a free local port."""
    with live_server(f"sqlite:///{tmp_path / 'oncecal.sqlite3'}") as running:
        yield running


@pytest.fixture
def link_url(
    server: LiveServer, make_owner: MakeOwner, make_calendar: MakeCalendar, make_link: MakeLink
) -> str:
    """Return the URL of a fresh one-time link on a calendar open around the clock."""
    with server.app.app_context():
        owner = make_owner(name=OWNER_NAME, email=OWNER_EMAIL)
        calendar = make_calendar(
            owner=owner, name="Consultation", timezone="UTC", weekly_hours=ALL_DAY, min_notice_minutes=0
        )
        _link, token = make_link(calendar)
    return f"{server.url}/l/{token}"
