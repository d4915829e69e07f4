"""Arrange open slots into the week the booking page shows, in the invitee's zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

DAYS_SHOWN = 7


@dataclass(frozen=True)
class SlotDay:
    day: date
    slots: list[datetime]


@dataclass(frozen=True)
class Week:
    days: list[SlotDay]
    previous: date | None
    next: date | None
    first_open: date | None

    @property
    def has_slots(self) -> bool:
        return any(d.slots for d in self.days)


def week_of_slots(slots: list[datetime], tz: ZoneInfo, today: date, first_day: date | None = None) -> Week:
    """Group UTC slot starts by local date for the week starting ``first_day``.

    Without ``first_day`` the week starts at the first day with an open slot,
    so an invitee never lands on an empty week when later ones have times.
    """
    local_days = [s.astimezone(tz).date() for s in slots]
    first_open = local_days[0] if local_days else None
    start = first_day or first_open or today
    start = max(start, today)
    end = start + timedelta(days=DAYS_SHOWN)
    by_day: dict[date, list[datetime]] = {start + timedelta(days=i): [] for i in range(DAYS_SHOWN)}
    for slot, day in zip(slots, local_days, strict=True):
        if start <= day < end:
            by_day[day].append(slot)
    previous = max(start - timedelta(days=DAYS_SHOWN), today) if start > today else None
    later = next((d for d in local_days if d >= end), None)
    return Week(
        days=[SlotDay(day, day_slots) for day, day_slots in by_day.items()],
        previous=previous,
        next=end if later is not None else None,
        first_open=first_open,
    )
