"""The template helpers: one time-range formatter, and a zone's clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from oncecal.templating import time_range, zone_prefers_12_hour

NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("start", "minutes", "twelve_hour", "expected"),
    [
        ((9, 0), 30, True, "9:00–9:30 AM"),
        ((9, 0), 30, False, "09:00–09:30"),
        ((11, 30), 60, True, "11:30 AM–12:30 PM"),
        ((11, 30), 60, False, "11:30–12:30"),
        ((0, 0), 30, True, "12:00–12:30 AM"),
        ((0, 0), 30, False, "00:00–00:30"),
        ((12, 0), 45, True, "12:00–12:45 PM"),
        ((23, 30), 60, True, "11:30 PM–12:30 AM"),
        ((23, 30), 60, False, "23:30–00:30"),
        ((8, 0), 720, True, "8:00 AM–8:00 PM"),
    ],
)
def test_a_time_range_says_its_clock_once(start, minutes, twelve_hour, expected) -> None:
    begins = datetime(2026, 12, 1, *start, tzinfo=NEW_YORK)
    assert time_range(begins, begins + timedelta(minutes=minutes), NEW_YORK, twelve_hour) == expected


@pytest.mark.parametrize(
    ("zone", "twelve_hour"),
    [("America/New_York", True), ("Australia/Sydney", True), ("Europe/Berlin", False), ("UTC", False)],
)
def test_a_zone_has_the_clock_of_its_country(zone: str, twelve_hour: bool) -> None:
    assert zone_prefers_12_hour(zone) is twelve_hour
