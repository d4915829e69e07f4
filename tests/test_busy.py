"""Busy time: what an iCalendar document says, and slots around it, as pure functions.

``busy.busy_times`` is pinned by small documents; slots around busy times
(instants, floating wall-clock times and all-day dates put on the clock with
``busy.on_clock``) by properties near the DST changes of 2026 and 2027.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recurring_ical_events.occurrence import Occurrence

from oncecal.services import busy, busycopy
from oncecal.services.busy import BusyTime, NotICalendar, TooManyEvents, busy_times, on_clock
from oncecal.services.slots import Availability, available_slots, is_available, iter_slots, parse_weekly_hours

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
ALL_DAY = parse_weekly_hours({str(d): [["00:00", "24:00"]] for d in range(7)})
AFTER = datetime(2026, 5, 1, tzinfo=UTC)
BEFORE = datetime(2026, 8, 1, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def wall(*parts: int) -> datetime:
    """A floating wall-clock time as BusyTime keeps it: written as if it were UTC."""
    return datetime(*parts, tzinfo=UTC)


def document(*events: list[str], header: tuple[str, ...] = ()) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//OnceCal tests//EN", *header]
    for event in events:
        lines += ["BEGIN:VEVENT", "DTSTAMP:20260101T000000Z", *event, "END:VEVENT"]
    return ("\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n").encode()


def spans(times: list[BusyTime]) -> list[tuple[datetime, datetime, bool]]:
    return [(t.start, t.end, t.floating) for t in times]


# --- busy_times on small documents ------------------------------------------


def test_transparent_and_cancelled_events_are_not_busy():
    doc = document(
        ["UID:busy", "DTSTART:20260601T100000Z", "DTEND:20260601T110000Z"],
        ["UID:tentative", "DTSTART:20260601T120000Z", "DTEND:20260601T130000Z", "STATUS:TENTATIVE"],
        ["UID:free", "DTSTART:20260601T140000Z", "DTEND:20260601T150000Z", "TRANSP:TRANSPARENT"],
        ["UID:off", "DTSTART:20260601T160000Z", "DTEND:20260601T170000Z", "STATUS:CANCELLED"],
    )
    assert [t.uid for t in busy_times(doc, AFTER, BEFORE)] == ["busy", "tentative"]


def test_dtstart_with_duration_ends_that_long_after():
    doc = document(["UID:d", "DTSTART:20260601T100000Z", "DURATION:PT1H30M"])
    assert busy_times(doc, AFTER, BEFORE) == [
        BusyTime(utc(2026, 6, 1, 10), utc(2026, 6, 1, 11, 30), False, "d")
    ]


def test_a_date_without_dtend_is_that_one_whole_day_on_the_wall_clock():
    doc = document(["UID:day", "DTSTART;VALUE=DATE:20260601"])
    assert spans(busy_times(doc, AFTER, BEFORE)) == [(wall(2026, 6, 1), wall(2026, 6, 2), True)]


def test_a_date_time_without_dtend_takes_no_time():
    doc = document(["UID:moment", "DTSTART:20260601T100000Z"])
    assert busy_times(doc, AFTER, BEFORE) == []


def test_only_events_overlapping_the_window_are_kept():
    doc = document(
        ["UID:before", "DTSTART:20260430T230000Z", "DTEND:20260501T000000Z"],
        ["UID:across", "DTSTART:20260430T233000Z", "DTEND:20260501T003000Z"],
        ["UID:last", "DTSTART:20260731T233000Z", "DTEND:20260801T003000Z"],
        ["UID:after", "DTSTART:20260801T000000Z", "DTEND:20260801T010000Z"],
    )
    assert [t.uid for t in busy_times(doc, AFTER, BEFORE)] == ["across", "last"]


def test_a_recurrence_id_override_moves_one_instance():
    doc = document(
        ["UID:standup", "DTSTART:20260601T090000Z", "DTEND:20260601T093000Z", "RRULE:FREQ=DAILY;COUNT=3"],
        [
            "UID:standup",
            "RECURRENCE-ID:20260602T090000Z",
            "DTSTART:20260602T150000Z",
            "DTEND:20260602T160000Z",
        ],
    )
    assert spans(busy_times(doc, AFTER, BEFORE)) == [
        (utc(2026, 6, 1, 9), utc(2026, 6, 1, 9, 30), False),
        (utc(2026, 6, 2, 15), utc(2026, 6, 2, 16), False),
        (utc(2026, 6, 3, 9), utc(2026, 6, 3, 9, 30), False),
    ]


def test_an_rdate_adds_one_instance_and_an_exdate_takes_one_away():
    doc = document(
        [
            "UID:review",
            "DTSTART:20260601T090000Z",
            "DTEND:20260601T100000Z",
            "RRULE:FREQ=WEEKLY;COUNT=3",
            "RDATE:20260604T140000Z",
            "EXDATE:20260608T090000Z",
        ]
    )
    assert [t.start for t in busy_times(doc, AFTER, BEFORE)] == [
        utc(2026, 6, 1, 9),
        utc(2026, 6, 4, 14),
        utc(2026, 6, 15, 9),
    ]


def test_a_windows_zone_name_is_read_as_its_iana_zone():
    doc = document(
        [
            "UID:summer",
            "DTSTART;TZID=Pacific Standard Time:20260601T090000",
            "DTEND;TZID=Pacific Standard Time:20260601T100000",
        ],
        [
            "UID:winter",
            "DTSTART;TZID=Pacific Standard Time:20261201T090000",
            "DTEND;TZID=Pacific Standard Time:20261201T100000",
        ],
    )
    found = busy_times(doc, AFTER, datetime(2027, 1, 1, tzinfo=UTC))
    assert [(t.uid, t.start, t.floating) for t in found] == [
        ("summer", datetime(2026, 6, 1, 9, tzinfo=LOS_ANGELES).astimezone(UTC), False),
        ("winter", datetime(2026, 12, 1, 9, tzinfo=LOS_ANGELES).astimezone(UTC), False),
    ]
    assert [t.start.hour for t in found] == [16, 17]  # PDT is UTC-7, PST UTC-8


def test_x_wr_timezone_gives_floating_times_their_zone():
    event = ["UID:f", "DTSTART:20260601T090000", "DTEND:20260601T100000"]
    assert spans(busy_times(document(event), AFTER, BEFORE)) == [
        (wall(2026, 6, 1, 9), wall(2026, 6, 1, 10), True)
    ]
    zoned = document(event, header=("X-WR-TIMEZONE:America/New_York",))
    assert spans(busy_times(zoned, AFTER, BEFORE)) == [(utc(2026, 6, 1, 13), utc(2026, 6, 1, 14), False)]


@pytest.mark.parametrize("name", ["Moon/Base", ""])
def test_an_unknown_x_wr_timezone_leaves_floating_times_floating(name: str):
    event = ["UID:f", "DTSTART:20260601T090000", "DTEND:20260601T100000"]
    unknown = document(event, header=(f"X-WR-TIMEZONE:{name}",))
    assert spans(busy_times(unknown, AFTER, BEFORE)) == [(wall(2026, 6, 1, 9), wall(2026, 6, 1, 10), True)]


@pytest.mark.parametrize(
    "garbage",
    [
        b"hello",
        b"",
        b"\xff\xfe\x00\x01",
        b"<html><body>Sign in</body></html>",
        b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n",
        document(["UID:x", "DTSTART:notadate"]),
        document(["UID:x", "DTSTART:20260601T100000Z", "DTEND:20260601T110000Z", "RRULE:FREQ=SOMETIMES"]),
    ],
    ids=["text", "empty", "binary", "html", "no vcalendar", "bad date", "bad rule"],
)
def test_garbage_is_not_icalendar(garbage: bytes):
    with pytest.raises(NotICalendar):
        busy_times(garbage, AFTER, BEFORE)


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        (BERLIN, date(2026, 3, 29), 23),
        (BERLIN, date(2026, 10, 25), 25),
        (NEW_YORK, date(2026, 3, 8), 23),
        (NEW_YORK, date(2026, 11, 1), 25),
        (SYDNEY, date(2026, 4, 5), 25),
        (SYDNEY, date(2026, 10, 4), 23),
    ],
)
def test_an_all_day_event_on_a_dst_change_blocks_exactly_that_local_date(
    zone: ZoneInfo, day: date, hours: int
):
    following = day + timedelta(days=1)
    doc = document(
        ["UID:holiday", f"DTSTART;VALUE=DATE:{day:%Y%m%d}", f"DTEND;VALUE=DATE:{following:%Y%m%d}"]
    )
    found = busy_times(doc, utc(2026, 1, 1), utc(2027, 1, 1))

    [(start, end)] = on_clock(spans(found), zone)
    assert start == datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    assert end == datetime.combine(following, time(0), tzinfo=zone).astimezone(UTC)
    assert end - start == timedelta(hours=hours)

    avail = Availability(timezone=zone, weekly=ALL_DAY, duration=timedelta(minutes=30), days_ahead=2)
    now = datetime.combine(day - timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    by_date: dict[date, list[datetime]] = {}
    for slot in available_slots(avail, [(start, end)], now):
        by_date.setdefault(slot.astimezone(zone).date(), []).append(slot.astimezone(zone))
    assert day not in by_date
    assert by_date[day - timedelta(days=1)][-1].time() == time(23, 30)
    assert by_date[following][0].time() == time(0, 0)


def test_too_many_events_are_refused_whole(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(busy, "MAX_BUSY_TIMES", 5)
    daily = ["UID:d", "DTSTART:20260601T090000Z", "DTEND:20260601T093000Z"]
    assert len(busy_times(document([*daily, "RRULE:FREQ=DAILY;COUNT=5"]), AFTER, BEFORE)) == 5
    with pytest.raises(TooManyEvents):
        busy_times(document([*daily, "RRULE:FREQ=DAILY;COUNT=6"]), AFTER, BEFORE)


def test_a_rule_far_past_the_limit_is_refused_without_expanding_all_of_it(monkeypatch: pytest.MonkeyPatch):
    # Every minute for three months is 132,000 occurrences: past a limit of 5, reading on is wasted
    # (at the real limit, FREQ=SECONDLY over a feed's 62 days would be 5 million of them).
    monkeypatch.setattr(busy, "MAX_BUSY_TIMES", 5)
    every_minute = document(
        ["UID:m", "DTSTART:20260601T090000Z", "DTEND:20260601T093000Z", "RRULE:FREQ=MINUTELY"]
    )
    made = []
    as_component = Occurrence.as_component
    monkeypatch.setattr(Occurrence, "as_component", lambda self, *a: made.append(1) or as_component(self, *a))
    with pytest.raises(TooManyEvents):
        busy_times(every_minute, AFTER, BEFORE)
    # Read in order of start, a day's worth at most before the limit stops it (not all 132,000).
    assert len(made) <= 24 * 60


# --- slots around busy times, near DST changes --------------------------------

ZONE_NAMES = ("Europe/Berlin", "America/New_York", "Australia/Sydney")


@cache
def dst_changes(name: str) -> tuple[datetime, ...]:
    """The instants in 2026 and 2027 at which ``name``'s offset changes (all on the hour)."""
    zone = ZoneInfo(name)
    changes = []
    instant = utc(2026, 1, 1)
    offset = instant.astimezone(zone).utcoffset()
    while instant < utc(2028, 1, 1):
        instant += timedelta(hours=1)
        if instant.astimezone(zone).utcoffset() != offset:
            changes.append(instant)
            offset = instant.astimezone(zone).utcoffset()
    return tuple(changes)


def test_each_zone_changes_its_clock_four_times_in_2026_and_2027():
    assert {name: len(dst_changes(name)) for name in ZONE_NAMES} == dict.fromkeys(ZONE_NAMES, 4)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def weekly_hours(draw: st.DrawFn) -> dict[str, list[list[str]]]:
    hours: dict[str, list[list[str]]] = {}
    for weekday in range(7):
        if draw(st.booleans()):
            hours[str(weekday)] = [["00:00", "24:00"]]
            continue
        ranges = []
        for _ in range(draw(st.integers(0, 2))):
            start = draw(st.integers(0, 24 * 4 - 1)) * 15
            end = draw(st.integers(start // 15 + 1, 24 * 4)) * 15
            ranges.append([_hhmm(start), _hhmm(end)])
        hours[str(weekday)] = ranges
    return hours


@st.composite
def busy_spans(draw: st.DrawFn, zone: ZoneInfo, now: datetime, days: int) -> tuple[datetime, datetime, bool]:
    """A busy time as a copy keeps it: an instant span, a floating wall-clock span, or all-day dates."""
    kind = draw(st.sampled_from(["instant", "floating", "all-day"]))
    if kind == "instant":
        start = now + timedelta(minutes=draw(st.integers(-240, days * 24 * 60)))
        return start, start + timedelta(minutes=draw(st.integers(1, 600))), False
    local_now = now.astimezone(zone).replace(tzinfo=UTC)
    if kind == "floating":
        start = (local_now + timedelta(minutes=draw(st.integers(-240, days * 24 * 60)))).replace(
            second=0, microsecond=0
        )
        return start, start + timedelta(minutes=draw(st.integers(1, 600))), True
    first = local_now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        days=draw(st.integers(-1, days))
    )
    return first, first + timedelta(days=draw(st.integers(1, 2))), True


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Availability, datetime, list[tuple[datetime, datetime, bool]]]:
    name = draw(st.sampled_from(ZONE_NAMES))
    zone = ZoneInfo(name)
    change = draw(st.sampled_from(dst_changes(name)))
    # From three days before a change to a day after it; the horizon reaches over it.
    now = change + timedelta(
        minutes=draw(st.integers(-3 * 24 * 60, 24 * 60)), seconds=draw(st.integers(0, 59))
    )
    days = draw(st.integers(0, 4))
    avail = Availability(
        timezone=zone,
        weekly=parse_weekly_hours(draw(weekly_hours())),
        duration=timedelta(minutes=draw(st.integers(3, 24)) * 5),
        buffer=timedelta(minutes=draw(st.integers(0, 60))),
        notice=timedelta(minutes=draw(st.sampled_from([0, 0, 30, 90]))),
        days_ahead=days,
    )
    times = draw(st.lists(busy_spans(zone, now, days + 1), max_size=8))
    return avail, now, times


def overlaps(slot: datetime, avail: Availability, start: datetime, end: datetime) -> bool:
    """Whether the slot meets the busy time widened by the buffer on both sides."""
    return slot < end + avail.buffer and start - avail.buffer < slot + avail.duration


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.data())
def test_no_slot_meets_a_busy_time_or_its_buffer(scenario, data):
    avail, now, times = scenario
    placed = on_clock(times, avail.timezone)
    slots = available_slots(avail, placed, now)

    assert list(iter_slots(avail, placed, now)) == slots
    for slot in slots:
        assert not any(overlaps(slot, avail, start, end) for start, end in placed), slot
    # A floating all-day span blocks its whole local dates, whatever the DST change does to their length.
    blocked = {
        (start + timedelta(days=d)).date()
        for start, end, floating in times
        if floating and start.time() == time(0) and end.time() == time(0)
        for d in range((end - start).days)
    }
    assert not {slot.astimezone(avail.timezone).date() for slot in slots} & blocked

    # Checking one slot agrees with the whole horizon: free or blocked slots of the rules, and instants near now.
    offered = set(slots)
    rule_slots = available_slots(avail, [], now)
    sample = data.draw(st.lists(st.sampled_from(rule_slots), max_size=10)) if rule_slots else []
    sample += [
        now + timedelta(minutes=m) for m in data.draw(st.lists(st.integers(-60, 5 * 24 * 60), max_size=3))
    ]
    for start in sample:
        assert is_available(avail, placed, now, start) == (start in offered), start


def test_an_all_day_event_stays_a_whole_date_in_a_feed_with_x_wr_timezone():
    # Found in review: the feed's zone was put on DATE values too, so it blocked 09:00 to 09:00 in Berlin.
    feed = document(
        ["UID:d", "DTSTART;VALUE=DATE:20260610", "DTEND;VALUE=DATE:20260611"],
        header=("X-WR-TIMEZONE:America/Los_Angeles",),
    )
    [day] = busy_times(feed, AFTER, BEFORE)
    assert day.floating
    berlin = ZoneInfo("Europe/Berlin")
    assert on_clock([(day.start, day.end, day.floating)], berlin) == [
        (
            datetime(2026, 6, 10, tzinfo=berlin).astimezone(UTC),
            datetime(2026, 6, 11, tzinfo=berlin).astimezone(UTC),
        )
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2000), st.integers(1, 300), st.booleans()),
        max_size=30,
    )
)
def test_merged_busy_times_cover_exactly_what_they_did(spans_in_minutes: list[tuple[int, int, bool]]):
    origin = utc(2026, 6, 1)
    times = [
        BusyTime(origin + timedelta(minutes=s), origin + timedelta(minutes=s + n), floating, f"u{i}")
        for i, (s, n, floating) in enumerate(spans_in_minutes)
    ]

    def minutes(of: list[BusyTime], floating: bool) -> set[int]:
        return {
            m
            for t in of
            if t.floating is floating
            for m in range(
                int((t.start - origin).total_seconds() // 60), int((t.end - origin).total_seconds() // 60)
            )
        }

    joined = busycopy.merged(times)
    for floating in (False, True):
        assert minutes(joined, floating) == minutes(times, floating)
        ours = sorted((t.start, t.end) for t in joined if t.floating is floating)
        assert all(a[1] < b[0] for a, b in pairwise(ours))  # apart, not touching


def test_a_rule_no_month_has_is_its_first_start_only():
    # Found in review: FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30 made dateutil search to the year 9999 (5 s a rule).
    never = document(
        [
            "UID:n",
            "DTSTART:20260601T090000Z",
            "DTEND:20260601T093000Z",
            "RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
        ]
    )
    assert spans(busy_times(never, AFTER, BEFORE)) == [(utc(2026, 6, 1, 9), utc(2026, 6, 1, 9, 30), False)]
    assert busy._never(icalendar.vRecur.from_ical("FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31"))
    assert not busy._never(icalendar.vRecur.from_ical("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"))
    assert not busy._never(icalendar.vRecur.from_ical("FREQ=MONTHLY;BYMONTHDAY=-1"))


def test_a_rule_that_began_long_ago_and_repeats_by_the_second_is_refused():
    # Found in review: its starts before the window were walked, uncounted (a year back: 80 s, 1.5 GB).
    old = document(["UID:o", "DTSTART:20250101T000000Z", "DTEND:20250101T000001Z", "RRULE:FREQ=SECONDLY"])
    with pytest.raises(TooManyEvents, match="repeats too often"):
        busy_times(old, AFTER, BEFORE)
