"""Slot computation: a pure function, pinned by examples and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from oncecal.services.slots import Availability, available_slots, is_available, iter_slots, parse_weekly_hours
from oncecal.week import week_of_slots

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(tz: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=tz, fold=fold).astimezone(UTC)


def rules(tz: ZoneInfo, hours: dict[int, list[list[str]]], **kw) -> Availability:
    return Availability(
        timezone=tz,
        weekly=parse_weekly_hours({str(k): v for k, v in hours.items()}),
        duration=kw.pop("duration", timedelta(minutes=30)),
        **kw,
    )


def local_times(slots: list[datetime], tz: ZoneInfo) -> list[str]:
    return [s.astimezone(tz).strftime("%m-%d %H:%M %Z") for s in slots]


class TestExamples:
    def test_weekday_hours_in_the_calendar_zone(self):
        avail = rules(BERLIN, {0: [["09:00", "11:00"]]}, days_ahead=7)
        now = at(BERLIN, 2026, 11, 29, 12)  # a Sunday
        slots = available_slots(avail, [], now)
        assert local_times(slots, BERLIN) == [
            "11-30 09:00 CET",
            "11-30 09:30 CET",
            "11-30 10:00 CET",
            "11-30 10:30 CET",
        ]

    def test_spring_forward_skips_the_missing_hour_in_berlin(self):
        avail = rules(BERLIN, {6: [["01:00", "04:00"]]}, days_ahead=1)
        now = at(BERLIN, 2026, 3, 29, 0)
        slots = available_slots(avail, [], now)
        assert local_times(slots, BERLIN) == [
            "03-29 01:00 CET",
            "03-29 01:30 CET",
            "03-29 03:00 CEST",
            "03-29 03:30 CEST",
        ]

    def test_fall_back_keeps_slots_apart_in_new_york(self):
        avail = rules(NEW_YORK, {6: [["00:00", "03:00"]]}, days_ahead=1)
        slots = available_slots(avail, [], at(NEW_YORK, 2026, 11, 1, 0))
        assert local_times(slots, NEW_YORK) == [
            "11-01 00:00 EDT",
            "11-01 00:30 EDT",
            "11-01 01:00 EDT",
            "11-01 01:30 EDT",
            "11-01 02:00 EST",
            "11-01 02:30 EST",
        ]
        gaps = {b - a for a, b in pairwise(slots)}
        assert min(gaps) >= timedelta(minutes=30)

    def test_past_times_and_notice_are_excluded(self):
        avail = rules(
            BERLIN, {d: [["09:00", "17:00"]] for d in range(7)}, notice=timedelta(hours=2), days_ahead=0
        )
        now = at(BERLIN, 2026, 12, 1, 10, 10)
        slots = available_slots(avail, [], now)
        assert local_times(slots, BERLIN)[0] == "12-01 12:30 CET"

    def test_buffer_keeps_time_free_on_both_sides_of_a_booking(self):
        avail = rules(BERLIN, {1: [["09:00", "13:00"]]}, buffer=timedelta(minutes=15), days_ahead=7)
        booked = (at(BERLIN, 2026, 12, 1, 10), at(BERLIN, 2026, 12, 1, 10, 30))
        slots = available_slots(avail, [booked], at(BERLIN, 2026, 11, 30, 8))
        assert local_times(slots, BERLIN) == [
            "12-01 09:00 CET",
            "12-01 11:00 CET",
            "12-01 11:30 CET",
            "12-01 12:00 CET",
            "12-01 12:30 CET",
        ]

    def test_horizon_crosses_the_month_end(self):
        avail = rules(ZoneInfo("UTC"), {d: [["09:00", "10:00"]] for d in range(7)}, days_ahead=2)
        slots = available_slots(avail, [], at(ZoneInfo("UTC"), 2027, 1, 31, 12))
        assert [s.date() for s in slots] == [
            date(2027, 2, 1),
            date(2027, 2, 1),
            date(2027, 2, 2),
            date(2027, 2, 2),
        ]

    def test_a_day_can_end_at_midnight(self):
        avail = rules(ZoneInfo("UTC"), {2: [["23:00", "24:00"]]}, days_ahead=7)
        slots = available_slots(avail, [], at(ZoneInfo("UTC"), 2026, 12, 1, 0))
        assert [s.strftime("%a %H:%M") for s in slots] == ["Wed 23:00", "Wed 23:30"]

    def test_date_override_replaces_the_weekday(self):
        day_off = date(2026, 12, 1)
        avail = Availability(
            timezone=BERLIN,
            weekly=parse_weekly_hours({"1": [["09:00", "10:00"]]}),
            duration=timedelta(minutes=30),
            days_ahead=14,
            overrides={day_off: ()},
        )
        slots = available_slots(avail, [], at(BERLIN, 2026, 11, 30, 8))
        assert {s.astimezone(BERLIN).date() for s in slots} == {date(2026, 12, 8)}

    def test_overlapping_ranges_offer_each_time_once(self):
        avail = rules(ZoneInfo("UTC"), {1: [["09:00", "11:00"], ["10:00", "12:00"]]}, days_ahead=7)
        slots = available_slots(avail, [], at(ZoneInfo("UTC"), 2026, 11, 30, 0))
        assert len(slots) == len(set(slots)) == 6


ZONES = st.sampled_from(
    ["Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago"]
)
MINUTES = st.integers(0, 24 * 4).map(lambda q: q * 15)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def weekly_hours(draw) -> dict[int, list[list[str]]]:
    hours: dict[int, list[list[str]]] = {}
    for weekday in range(7):
        ranges = []
        for _ in range(draw(st.integers(0, 2))):
            start = draw(st.integers(0, 24 * 4 - 1)) * 15
            end = draw(st.integers(start // 15 + 1, 24 * 4)) * 15
            ranges.append([_hhmm(start), _hhmm(end)])
        hours[weekday] = ranges
    return hours


# Around DST changes and month ends of 2026–2027, and anywhere in between.
NOWS = st.one_of(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    st.sampled_from(
        [
            datetime(2026, 3, 28, 20, tzinfo=UTC),  # Europe springs forward on the 29th
            datetime(2026, 10, 24, 20, tzinfo=UTC),  # Europe falls back on the 25th
            datetime(2026, 3, 7, 20, tzinfo=UTC),  # New York springs forward on the 8th
            datetime(2026, 10, 31, 20, tzinfo=UTC),  # New York falls back on 1 November
            datetime(2026, 2, 28, 23, 59, tzinfo=UTC),
            datetime(2026, 12, 31, 23, 0, tzinfo=UTC),
        ]
    ),
)


@st.composite
def scenarios(draw):
    tz = ZoneInfo(draw(ZONES))
    avail = Availability(
        timezone=tz,
        weekly=parse_weekly_hours({str(k): v for k, v in draw(weekly_hours()).items()}),
        duration=timedelta(minutes=draw(st.sampled_from([15, 20, 30, 45, 60, 90]))),
        buffer=timedelta(minutes=draw(st.sampled_from([0, 5, 10, 15, 30]))),
        notice=timedelta(minutes=draw(st.integers(0, 48 * 60))),
        days_ahead=draw(st.integers(0, 10)),
    )
    now = draw(NOWS)
    busy = []
    for _ in range(draw(st.integers(0, 6))):
        start = now + timedelta(minutes=draw(st.integers(-120, 12 * 24 * 60)))
        busy.append((start, start + timedelta(minutes=draw(st.integers(5, 180)))))
    return avail, now, busy


def conflicts(slot: datetime, avail: Availability, busy_start: datetime, busy_end: datetime) -> bool:
    return slot < busy_end + avail.buffer and busy_start < slot + avail.duration + avail.buffer


@settings(max_examples=300, deadline=None)
@given(scenarios())
@example(
    (
        Availability(
            timezone=BERLIN,
            weekly=parse_weekly_hours({"6": [["00:00", "24:00"]]}),
            duration=timedelta(minutes=45),
            days_ahead=1,
        ),
        datetime(2026, 3, 28, 23, tzinfo=UTC),
        [],
    )
)
def test_every_slot_is_inside_the_rules(scenario):
    avail, now, busy = scenario
    tz = avail.timezone
    slots = available_slots(avail, busy, now)
    assert slots == sorted(set(slots)), "slots ascend without repeats"
    today = now.astimezone(tz).date()
    for slot in slots:
        assert slot.tzinfo is not None
        assert slot >= now + avail.notice
        local = slot.astimezone(tz)
        assert today <= local.date() <= today + timedelta(days=avail.days_ahead)
        # The wall-clock time exists (no DST gap) and sits on a range's grid.
        wall = local.replace(tzinfo=None)
        assert datetime.combine(wall.date(), wall.time(), tzinfo=tz).astimezone(UTC) == slot
        ranges = avail.weekly.get(local.weekday(), ())
        assert any(_fits(slot, local, avail, start, end) for start, end in ranges), local
        assert not any(conflicts(slot, avail, bs, be) for bs, be in busy)


def _fits(slot: datetime, local: datetime, avail: Availability, start: time, end: time | None) -> bool:
    minutes = local.hour * 60 + local.minute - (start.hour * 60 + start.minute)
    if minutes < 0 or minutes % int(avail.duration.total_seconds() // 60):
        return False
    day = local.date()
    if end is None:
        range_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=avail.timezone)
    else:
        range_end = datetime.combine(day, end, tzinfo=avail.timezone)
    return slot + avail.duration <= range_end.astimezone(UTC)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_bookings_only_remove_the_slots_they_touch(scenario):
    avail, now, busy = scenario
    free = available_slots(avail, [], now)
    expected = [s for s in free if not any(conflicts(s, avail, bs, be) for bs, be in busy)]
    assert available_slots(avail, busy, now) == expected


@settings(max_examples=200, deadline=None)
@given(scenarios(), ZONES)
def test_week_view_shows_each_slot_of_its_week_once(scenario, invitee_zone):
    avail, now, busy = scenario
    slots = available_slots(avail, busy, now)
    tz = ZoneInfo(invitee_zone)
    today = now.astimezone(tz).date()
    week = week_of_slots(slots, tz, today)
    shown = [s for day in week.days for s in day.slots]
    assert len(week.days) == 7
    assert shown == [s for s in slots if week.days[0].day <= s.astimezone(tz).date() <= week.days[-1].day]
    for day in week.days:
        assert all(s.astimezone(tz).date() == day.day for s in day.slots)
    if slots:
        assert week.has_slots


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.data())
def test_checking_one_slot_agrees_with_the_whole_horizon(scenario, data):
    avail, now, busy = scenario
    free = available_slots(avail, [], now)
    offered = set(available_slots(avail, busy, now))
    # Every slot the rules offer (booked or not), and instants that are no slot at all.
    candidates = [*free, *(now + timedelta(minutes=m) for m in data.draw(st.lists(MINUTES, max_size=5)))]
    for start in candidates:
        assert is_available(avail, busy, now, start) == (start in offered), start


@settings(max_examples=200, deadline=None)
@given(scenarios(), ZONES, st.integers(0, 12))
def test_week_view_reads_slots_lazily_with_the_same_result(scenario, invitee_zone, first_day_offset):
    avail, now, busy = scenario
    tz = ZoneInfo(invitee_zone)
    today = now.astimezone(tz).date()
    first_day = today + timedelta(days=first_day_offset) if first_day_offset else None
    eager = week_of_slots(available_slots(avail, busy, now), tz, today, first_day)
    assert week_of_slots(iter_slots(avail, busy, now), tz, today, first_day) == eager
