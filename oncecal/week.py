"""Arrange open slots into the week the booking page shows, in the invitee's zone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import chain
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


def week_of_slots(
    slots: Iterable[datetime], tz: ZoneInfo, today: date, first_day: date | None = None
) -> Week:
    """Group UTC slot starts by local date for the week starting ``first_day``.

    Without ``first_day`` the week starts at the first day with an open slot,
    so an invitee never lands on an empty week when later ones have times.
    ``slots`` ascend and are read lazily: after the first slot past the week
    (and a day's margin, in case a zone's clock steps back over midnight)
    the rest is never computed.
    """
    remaining = iter(slots)
    first = next(remaining, None)
    first_open = first.astimezone(tz).date() if first is not None else None
    start = first_day or first_open or today
    start = max(start, today)
    end = start + timedelta(days=DAYS_SHOWN)
    by_day: dict[date, list[datetime]] = {start + timedelta(days=i): [] for i in range(DAYS_SHOWN)}
    # Any slot at or after this instant is on a local date past the week.
    beyond = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz)
    later = None
    for slot in chain((first,), remaining) if first is not None else ():
        day = slot.astimezone(tz).date()
        if start <= day < end:
            by_day[day].append(slot)
        elif day >= end and later is None:
            later = day
        if later is not None and slot >= beyond:
            break
    previous = max(start - timedelta(days=DAYS_SHOWN), today) if start > today else None
    return Week(
        days=[SlotDay(day, day_slots) for day, day_slots in by_day.items()],
        previous=previous,
        next=end if later is not None else None,
        first_open=first_open,
    )
