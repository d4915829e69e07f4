"""Calendar connections against a real CalDAV server (Radicale, started by the tests) and a local feed server.

Busy times block slots and bookings, write-back puts, moves and deletes the
booking's event, and a source that fails keeps its last good copy.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import (
    Booking,
    BusyInterval,
    Calendar,
    ConnectedCalendar,
    Connection,
    OutboxMessage,
    utcnow,
)
from oncecal.services import bookings, busycopy, caldav_source, changes, connections, links, remote, writeback
from oncecal.services.bookings import Invitee, SlotUnavailable, availability_of
from oncecal.services.ics import booking_uid
from oncecal.services.remote import AuthFailed, RemoteError
from oncecal.services.slots import available_slots, iter_slots
from oncecal.worker import run_worker
from tests.conftest import ALL_DAY, MakeCalendar, MakeLink, MakeOwner, fan_out_events
from tests.support.httpstub import HTTPStub, Repeated
from tests.support.radicale import CalDAVAccount, RadicaleServer

pytestmark = pytest.mark.slow

BERLIN = ZoneInfo("Europe/Berlin")
IVY = Invitee(name="Ivy Invitee", email="ivy@example.com", timezone="Europe/Berlin")


@pytest.fixture
def private_ok(app: Flask) -> Flask:
    """The app with loopback targets allowed (every test server is on loopback)."""
    app.config["CONNECTIONS_ALLOW_PRIVATE"] = True
    return app


@pytest.fixture
def on_both(any_app: Flask) -> Iterator[Flask]:
    """The app on SQLite and on PostgreSQL, loopback allowed, inside its context."""
    any_app.config["CONNECTIONS_ALLOW_PRIVATE"] = True
    with any_app.app_context():
        yield any_app


def _day(days: int = 3) -> date:
    return (utcnow().astimezone(BERLIN) + timedelta(days=days)).date()


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


def _ics(*events: dict[str, Any]) -> str:
    """A VCALENDAR of ``events`` (property → value, as icalendar takes them), with the VTIMEZONEs they need."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//OnceCal tests//EN")
    calendar.add("version", "2.0")
    for fields in events:
        event = icalendar.Event()
        event.add("dtstamp", utcnow())
        for name, value in fields.items():
            event.add(name, value)
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical().decode()


def _slots_on(calendar: Calendar, day: date) -> set[datetime]:
    db.session.expire_all()
    calendar = db.session.get_one(Calendar, calendar.id)
    return {
        slot.astimezone(BERLIN).replace(tzinfo=None)
        for slot in bookings.open_slots(calendar, utcnow())
        if slot.astimezone(BERLIN).date() == day
    }


def _free(calendar: Calendar, day: date, hour: int, minute: int = 0) -> bool:
    return datetime.combine(day, datetime.min.time()).replace(hour=hour, minute=minute) in _slots_on(
        calendar, day
    )


def _work_with_a_dentist(account: CalDAVAccount) -> tuple[str, date]:
    """A "Work" calendar with one busy hour, 10:00 to 11:00 in Berlin, three days ahead; its URL and the day."""
    work = account.make_calendar("work", "Work")
    day = _day()
    account.put_event(
        work, "dentist", _ics({"uid": "dentist", "dtstart": _at(day, 10), "dtend": _at(day, 11)})
    )
    return work, day


def _warm(app: Flask, client: FlaskClient, token: str) -> None:
    """Open the link's page once (templates compiled, statements prepared), then forget that its copy was looked at."""
    assert client.get(f"/l/{token}").status_code == 200
    app.extensions.pop("oncecal.busy_looked_at", None)


def _connect(owner: Any, account: CalDAVAccount) -> Connection:
    return connections.add_caldav(owner, account.url, account.username, account.password, utcnow())


def _berlin_calendar(make_calendar: MakeCalendar, **fields: Any) -> Calendar:
    return make_calendar(timezone="Europe/Berlin", weekly_hours=ALL_DAY, duration_minutes=30, **fields)


def test_discovery_finds_both_calendars_by_name_and_stores_the_password_sealed(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, caldav_account: CalDAVAccount
):
    caldav_account.make_calendar("work", "Work")
    caldav_account.make_calendar("home", "Home & family")
    owner = make_owner()
    connection = _connect(owner, caldav_account)

    assert sorted(source.name for source in connection.calendars) == ["Home & family", "Work"]
    assert all(source.writable and source.last_good_read_at is not None for source in connection.calendars)
    assert connection.host == "127.0.0.1"
    # The raw database: no column of any row holds the password.
    assert caldav_account.password not in _raw_dump()
    assert runtime().secrets.open(connection.secret, connection.key_id) == caldav_account.password


def _raw_dump() -> str:
    """Every row of every table, as the database holds it."""
    dump = []
    with db.engine.connect() as raw:
        for table in db.metadata.sorted_tables:
            dump += [repr(tuple(row)) for row in raw.execute(sa.select(table))]
    return "\n".join(dump)


def test_the_raw_database_holds_no_feed_url(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, http_stub: HTTPStub
):
    url = http_stub.route("/calendar/ical/s3cr3t-feed-token/basic.ics", _feed())
    connection = connections.add_feed(make_owner(), url, utcnow())
    dump = _raw_dump()
    assert "s3cr3t-feed-token" not in dump and "/calendar/ical/" not in dump
    assert runtime().secrets.open(connection.secret, connection.key_id) == url


def test_a_wrong_password_is_a_clear_error_and_stores_nothing(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, caldav_account: CalDAVAccount
):
    caldav_account.make_calendar("work", "Work")
    owner = make_owner()
    with pytest.raises(AuthFailed, match="refused the username or password"):
        connections.add_caldav(
            owner, caldav_account.url, caldav_account.username, "not-the-password", utcnow()
        )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Connection)) == 0


def test_loopback_servers_are_refused_unless_allowed(
    app: Flask, ctx: None, make_owner: MakeOwner, caldav_account: CalDAVAccount
):
    with pytest.raises(RemoteError, match=r"private or loopback address.*ONCECAL_CONNECTIONS_ALLOW_PRIVATE"):
        _connect(make_owner(), caldav_account)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Connection)) == 0


def test_busy_events_block_slots_by_the_rules_of_busy(
    on_both: Flask,
    make_owner: MakeOwner,
    make_calendar: MakeCalendar,
    caldav_account: CalDAVAccount,
):
    work, day = _work_with_a_dentist(caldav_account)
    caldav_account.put_event(
        work,
        "free-lunch",
        _ics({"uid": "free-lunch", "dtstart": _at(day, 12), "dtend": _at(day, 13), "transp": "TRANSPARENT"}),
    )
    caldav_account.put_event(
        work,
        "called-off",
        _ics({"uid": "called-off", "dtstart": _at(day, 14), "dtend": _at(day, 15), "status": "CANCELLED"}),
    )
    # Daily at 08:00 Berlin for five days, without the second one.
    caldav_account.put_event(
        work,
        "standup",
        _ics(
            {
                "uid": "standup",
                "dtstart": _at(day, 8),
                "dtend": _at(day, 8, 30),
                "rrule": {"freq": "daily", "count": 5},
                "exdate": _at(day + timedelta(days=1), 8),
            }
        ),
    )
    # All day on the day after: blocks the whole date in the calendar's zone.
    caldav_account.put_event(
        work,
        "holiday",
        _ics({"uid": "holiday", "dtstart": day + timedelta(days=2), "dtend": day + timedelta(days=3)}),
    )
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner, buffer_minutes=15)
    connection = _connect(owner, caldav_account)
    source = connection.calendars[0]
    connections.connect_calendar(calendar, [source.id], None)
    assert connections.sync_source(source.id).ok

    assert not _free(calendar, day, 10) and not _free(calendar, day, 10, 30)
    # The buffer of 15 minutes keeps the slots next to the event free of it too.
    assert not _free(calendar, day, 9, 30) and not _free(calendar, day, 11)
    assert _free(calendar, day, 9) and _free(calendar, day, 11, 30)
    assert _free(calendar, day, 12) and _free(calendar, day, 14)  # transparent, cancelled
    assert not _free(calendar, day, 8)
    assert _free(calendar, day + timedelta(days=1), 8)  # the EXDATE
    assert not _free(calendar, day + timedelta(days=3), 8) and not _free(calendar, day + timedelta(days=4), 8)
    assert _free(calendar, day + timedelta(days=5), 8)  # COUNT=5 ended
    assert _slots_on(calendar, day + timedelta(days=2)) == set()  # the all-day event

    # The POST checks the copy too: a kept page cannot book over the dentist.
    with pytest.raises(SlotUnavailable):
        bookings.book_calendar(calendar.id, _at(day, 10), IVY, form_id=None, now=utcnow())


def test_an_event_added_later_counts_after_a_sync_and_kept_pages_go_stale(
    private_ok: Flask,
    ctx: None,
    client: FlaskClient,
    make_owner: MakeOwner,
    make_calendar: MakeCalendar,
    make_link: MakeLink,
    caldav_account: CalDAVAccount,
):
    work = caldav_account.make_calendar("work", "Work")
    day = _day()
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner)
    source = _connect(owner, caldav_account).calendars[0]
    connections.connect_calendar(calendar, [source.id], None)
    _link, token = make_link(calendar)
    revision = db.session.get_one(Calendar, calendar.id).busy_revision
    assert _free(calendar, day, 15)
    first = client.get(f"/l/{token}")
    assert first.status_code == 200

    caldav_account.put_event(
        work, "late", _ics({"uid": "late", "dtstart": _at(day, 15), "dtend": _at(day, 16)})
    )
    assert _free(calendar, day, 15)  # not read yet: the last good copy
    result = connections.sync_source(source.id)
    assert result.ok and result.changed
    assert not _free(calendar, day, 15)
    db.session.expire_all()
    assert db.session.get_one(Calendar, calendar.id).busy_revision > revision
    # Unchanged since: a sync writes nothing.
    assert connections.sync_source(source.id) == connections.SyncResult(True, False)


def test_write_back_puts_moves_and_deletes_the_booking_event(
    on_both: Flask,
    make_owner: MakeOwner,
    make_calendar: MakeCalendar,
    caldav_account: CalDAVAccount,
):
    work = caldav_account.make_calendar("work", "Work")
    day = _day()
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner)
    source = _connect(owner, caldav_account).calendars[0]
    connections.connect_calendar(calendar, [source.id], source.id)

    booked = bookings.book_calendar(calendar.id, _at(day, 9), IVY, form_id=None, now=utcnow())
    booking = db.session.get_one(Booking, booked.id)
    uid = booking_uid(booking)
    run_worker(on_both, once=True)
    stored = caldav_account.get_event(work, uid)
    assert stored is not None
    event = icalendar.Calendar.from_ical(stored).walk("VEVENT")[0]
    assert event.decoded("dtstart") == _at(day, 9)
    assert event["attendee"].params["SCHEDULE-AGENT"] == "CLIENT"
    assert "ivy@example.com" in str(event["attendee"])
    # Its own event never counts as busy: the slot stays taken only by the booking itself.
    assert connections.sync_source(source.id).ok
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BusyInterval)) == 0

    changes.reschedule_booking(booking.id, _at(day, 11), utcnow())
    run_worker(on_both, once=True)
    moved = icalendar.Calendar.from_ical(caldav_account.get_event(work, uid) or "").walk("VEVENT")[0]
    assert moved.decoded("dtstart") == _at(day, 11)

    changes.cancel_booking(booking.id, utcnow(), by="invitee")
    run_worker(on_both, once=True)
    assert caldav_account.get_event(work, uid) is None
    writes = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "calendar")).all()
    assert [m.status for m in writes] == ["delivered"] * 3


def test_a_stopped_server_keeps_the_last_good_copy_and_the_page_answers_in_time(
    private_ok: Flask,
    ctx: None,
    client: FlaskClient,
    make_owner: MakeOwner,
    make_calendar: MakeCalendar,
    make_link: MakeLink,
    caldav_account: CalDAVAccount,
    radicale_server: RadicaleServer,
):
    _work, day = _work_with_a_dentist(caldav_account)
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner)
    source = _connect(owner, caldav_account).calendars[0]
    connections.connect_calendar(calendar, [source.id], None)
    _link, token = make_link(calendar)
    _warm(private_ok, client, token)
    # The copy is six minutes old: the page reads the server first.
    db.session.execute(sa.update(ConnectedCalendar).values(last_attempt_at=utcnow() - timedelta(minutes=6)))
    db.session.commit()

    radicale_server.stop()
    started = time.monotonic()
    page = client.get(f"/l/{token}")
    assert page.status_code == 200
    assert time.monotonic() - started < 2
    assert not _free(calendar, day, 10)  # the last good copy still counts
    time.sleep(0.5)  # the page's read may finish after the page
    db.session.rollback()
    failed = db.session.get_one(ConnectedCalendar, source.id)
    assert failed.error and "Could not connect" in failed.error
    assert failed.last_good_read_at is not None and failed.failures == 1
    assert failed.next_sync_at > utcnow()  # backing off
    radicale_server.start()
    assert connections.sync_source(source.id).ok


def test_a_hanging_feed_never_holds_a_page_past_2_seconds(
    private_ok: Flask,
    ctx: None,
    client: FlaskClient,
    make_owner: MakeOwner,
    make_calendar: MakeCalendar,
    make_link: MakeLink,
    http_stub: HTTPStub,
):
    private_ok.config["CONNECTIONS_TIMEOUT_SECONDS"] = 2.5
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner)
    feed = connections.add_feed(owner, http_stub.route("/f.ics", _feed()), utcnow()).calendars[0]
    connections.connect_calendar(calendar, [feed.id], None)
    _link, token = make_link(calendar)
    _warm(private_ok, client, token)
    db.session.execute(sa.update(ConnectedCalendar).values(last_attempt_at=utcnow() - timedelta(minutes=6)))
    db.session.commit()
    http_stub.route("/f.ics", _feed(), delay=30)

    started = time.monotonic()
    assert client.get(f"/l/{token}").status_code == 200
    assert time.monotonic() - started < 2
    # A second page meanwhile starts no second read of the same feed.
    assert client.get(f"/l/{token}").status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the page's read ends with the feed's timeout
        db.session.rollback()  # a fresh snapshot (SQLite's lasts as long as the read transaction)
        if db.session.get_one(ConnectedCalendar, feed.id).error:
            break
        time.sleep(0.1)
    assert "did not answer in time" in (db.session.get_one(ConnectedCalendar, feed.id).error or "")
    assert http_stub.hits["/f.ics"] == 2  # the add, and one page-triggered read


def test_a_changed_password_shows_as_such(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, caldav_account: CalDAVAccount
):
    caldav_account.make_calendar("work", "Work")
    connection = _connect(make_owner(), caldav_account)
    sealed = runtime().secrets.seal("an-old-password")
    connection.secret, connection.key_id = sealed.token, sealed.key_id
    db.session.commit()
    result = connections.sync_source(connection.calendars[0].id)
    assert not result.ok
    db.session.expire_all()
    source = db.session.get_one(ConnectedCalendar, connection.calendars[0].id)
    assert source.error_kind == "auth" and "refused the username or password" in (source.error or "")


def test_removing_a_connection_frees_its_busy_times_at_once(
    on_both: Flask,
    make_owner: MakeOwner,
    make_calendar: MakeCalendar,
    caldav_account: CalDAVAccount,
):
    work, day = _work_with_a_dentist(caldav_account)
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner)
    connection = _connect(owner, caldav_account)
    connections.connect_calendar(calendar, [connection.calendars[0].id], connection.calendars[0].id)
    assert not _free(calendar, day, 10)

    connections.remove_connection(connection.id)
    assert _free(calendar, day, 10)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BusyInterval)) == 0
    assert not db.session.get_one(Calendar, calendar.id).checks_busy
    assert caldav_account.get_event(work, "dentist") is not None  # nothing deleted there


# --- ICS feeds ----------------------------------------------------------------


def _feed(*lines: str, zone_line: str = "") -> bytes:
    body = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//feed//EN", "X-WR-CALNAME:Team holidays"]
    if zone_line:
        body.append(zone_line)
    return ("\r\n".join([*body, *lines, "END:VCALENDAR"]) + "\r\n").encode()


def _vevent(uid: str, *props: str) -> list[str]:
    return ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z", *props, "END:VEVENT"]


def test_a_feed_with_windows_zones_floating_times_and_x_wr_timezone(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, make_calendar: MakeCalendar, http_stub: HTTPStub
):
    day = _day()
    stamp = day.strftime("%Y%m%d")
    windows = _vevent(
        "w",
        f"DTSTART;TZID=W. Europe Standard Time:{stamp}T100000",
        f"DTEND;TZID=W. Europe Standard Time:{stamp}T110000",
    )
    floating = _vevent("f", f"DTSTART:{stamp}T130000", f"DTEND:{stamp}T140000")
    url = http_stub.route(
        "/calendar.ics", _feed(*windows, *floating), headers={"Content-Type": "text/calendar"}
    )
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner)
    connection = connections.add_feed(owner, url, utcnow())
    assert connection.calendars[0].name == "Team holidays" and not connection.calendars[0].writable
    connections.connect_calendar(calendar, [connection.calendars[0].id], None)
    assert not _free(calendar, day, 10)  # 10:00 W. Europe is 10:00 in Berlin
    assert not _free(calendar, day, 13)  # floating: the calendar's own zone
    assert _free(calendar, day, 11)

    # With X-WR-TIMEZONE, floating times are in that zone: 13:00 New York is 19:00 in Berlin.
    http_stub.route("/calendar.ics", _feed(*floating, zone_line="X-WR-TIMEZONE:America/New_York"))
    assert connections.sync_source(connection.calendars[0].id).changed
    assert _free(calendar, day, 13) and not _free(calendar, day, 19)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not here", 404, "answered HTTP 404"),
        (b"<html><body>Sign in</body></html>", 200, "does not give an iCalendar feed"),
        (Repeated(b"X" * 65536, 11 * 1024 * 1024), 200, "larger than 10 MB"),
    ],
)
def test_a_bad_feed_is_refused_with_a_clear_error(
    private_ok: Flask,
    ctx: None,
    make_owner: MakeOwner,
    http_stub: HTTPStub,
    body: Any,
    status: int,
    error: str,
):
    url = http_stub.route("/feed.ics", body, status=status)
    with pytest.raises(RemoteError, match=error):
        connections.add_feed(make_owner(), url, utcnow())
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Connection)) == 0


def test_a_redirect_to_a_private_address_is_refused(
    app: Flask, ctx: None, make_owner: MakeOwner, http_stub: HTTPStub
):
    # The stub's address stands in for a public server; where it redirects is checked again.
    app.config["CONNECTIONS_TRUSTED_ADDRESSES"] = ["127.0.0.1"]
    inner = http_stub.route("/inner.ics", _feed())
    assert connections.add_feed(make_owner(), inner, utcnow()).kind == "ics"
    url = http_stub.redirect("/moved.ics", inner.replace("127.0.0.1", "127.0.0.2"))
    with pytest.raises(RemoteError, match=r"private or loopback address \(127.0.0.2\)"):
        connections.add_feed(make_owner(), url, utcnow())


def test_a_slow_caldav_server_costs_its_timeout(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, http_stub: HTTPStub
):
    private_ok.config["CONNECTIONS_TIMEOUT_SECONDS"] = 1
    url = http_stub.route("/dav/", b"<x/>", status=207, delay=5, methods=("PROPFIND",))
    started = time.monotonic()
    with pytest.raises(RemoteError, match="did not answer in time"):
        connections.add_caldav(make_owner(), url, "user", "pass", utcnow())
    assert time.monotonic() - started < 3


def test_a_slow_feed_costs_its_timeout_and_nothing_else(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, http_stub: HTTPStub
):
    private_ok.config["CONNECTIONS_TIMEOUT_SECONDS"] = 1
    url = http_stub.route("/slow.ics", _feed(), delay=5)
    started = time.monotonic()
    with pytest.raises(RemoteError, match="did not answer in time"):
        connections.add_feed(make_owner(), url, utcnow())
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;'
            b'&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'
            b'&lol2;">]><D:multistatus xmlns:D="DAV:"><D:response><D:href>&lol3;</D:href></D:response>'
            b"</D:multistatus>",
            "no calendars with events",  # the entities are not expanded: nothing is found
        ),
        (b"<D:multistatus xmlns:D='DAV:'><D:response>", "not valid WebDAV XML"),
        (Repeated(b"<x>" * 21846, 26 * 1024 * 1024), "larger than 25 MB"),
    ],
)
def test_a_hostile_caldav_server_is_an_error_on_that_connection(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, http_stub: HTTPStub, answer: bytes, error: str
):
    url = http_stub.route(
        "/dav/",
        answer,
        status=207,
        headers={"Content-Type": "application/xml"},
        methods=("PROPFIND", "REPORT", "OPTIONS"),
    )
    with pytest.raises(RemoteError, match=error):
        connections.add_caldav(make_owner(), url, "user", "pass", utcnow())
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Connection)) == 0


def test_a_feed_cannot_receive_bookings(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, make_calendar: MakeCalendar, http_stub: HTTPStub
):
    owner = make_owner()
    feed = connections.add_feed(owner, http_stub.route("/f.ics", _feed()), utcnow()).calendars[0]
    calendar = make_calendar(owner=owner)
    with pytest.raises(connections.ConnectionError_, match="is a feed"):
        connections.connect_calendar(calendar, [feed.id], feed.id)
    other = make_calendar()
    with pytest.raises(connections.ConnectionError_, match="No connected calendar"):
        connections.connect_calendar(other, [feed.id], None)


def test_the_link_consumed_by_a_booking_is_not_used_when_busy_blocks_it(
    on_both: Flask,
    make_owner: MakeOwner,
    make_calendar: MakeCalendar,
    make_link: MakeLink,
    http_stub: HTTPStub,
):
    day = _day()
    stamp = day.strftime("%Y%m%d")
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner)
    url = http_stub.route(
        "/f.ics",
        _feed(
            *_vevent(
                "x", f"DTSTART;TZID=Europe/Berlin:{stamp}T100000", f"DTEND;TZID=Europe/Berlin:{stamp}T110000"
            )
        ),
    )
    connections.connect_calendar(calendar, [connections.add_feed(owner, url, utcnow()).calendars[0].id], None)
    link, _token = make_link(calendar)
    with pytest.raises(SlotUnavailable):
        links.consume_link_and_book(link.id, _at(day, 10), IVY, form_id=None, now=utcnow())
    db.session.expire_all()
    assert db.session.get_one(type(link), link.id).uses == 0
    fan_out_events()


@pytest.mark.parametrize("seed", [16, 17, 18])
def test_busy_read_a_week_at_a_time_is_the_whole_copy_in_order(
    on_both: Flask, make_owner: MakeOwner, make_calendar: MakeCalendar, http_stub: HTTPStub, seed: int
):
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner)
    source = connections.add_feed(owner, http_stub.route("/f.ics", _feed()), utcnow()).calendars[0]
    connections.connect_calendar(calendar, [source.id], None)
    rng = random.Random(seed)
    start = datetime(2026, 3, 20, tzinfo=UTC)  # across Berlin's change to summer time
    rows = []
    for _ in range(400):
        begin = start + timedelta(minutes=rng.randrange(0, 40 * 24 * 60))
        rows.append(
            {
                "source_id": source.id,
                "start_at": begin,
                "end_at": begin + timedelta(minutes=rng.choice((15, 60, 24 * 60, 3 * 24 * 60))),
                "floating": rng.random() < 0.3,
            }
        )
    db.session.execute(sa.insert(BusyInterval), rows)
    db.session.commit()
    after, before = start + timedelta(days=2), start + timedelta(days=30)
    whole = sorted(busycopy.busy_for(calendar.id, BERLIN, after, before))
    # Open around the clock: every busy time can block a slot, so all are read, in order.
    weekly = list(busycopy.iter_busy(calendar.id, availability_of(calendar), after, before))
    assert weekly == sorted(weekly) and sorted(weekly) == whole and len(whole) > 200

    # With office hours, what is read is less, and the slots are the same as with all of it.
    hours = {str(d): [["09:00", "12:00"], ["13:00", "17:30"]] for d in range(5)}
    for buffer in (0, 20):
        db.session.execute(
            sa.update(Calendar)
            .where(Calendar.id == calendar.id)
            .values(weekly_hours=hours, buffer_minutes=buffer)
        )
        db.session.commit()
        rules = availability_of(db.session.get_one(Calendar, calendar.id))
        horizon = after + timedelta(days=rules.days_ahead + 2)
        every = busycopy.busy_for(calendar.id, BERLIN, after, horizon)
        read = list(busycopy.iter_busy(calendar.id, rules, after, horizon))
        assert read == sorted(read) and len(read) < len(every)
        assert list(iter_slots(rules, [], after, more_busy=read)) == available_slots(rules, every, after)


# --- found in review: each seen failing before its fix --------------------------


def test_a_new_target_takes_the_booking_and_the_old_one_loses_it(
    on_both: Flask, make_owner: MakeOwner, make_calendar: MakeCalendar, caldav_account: CalDAVAccount
):
    first = caldav_account.make_calendar("first", "First")
    second = caldav_account.make_calendar("second", "Second")
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner)
    sources = {s.name: s.id for s in _connect(owner, caldav_account).calendars}
    connections.connect_calendar(calendar, [], sources["First"])
    day = _day()
    booked = bookings.book_calendar(calendar.id, _at(day, 9), IVY, form_id=None, now=utcnow())
    uid = booking_uid(db.session.get_one(Booking, booked.id))
    run_worker(on_both, once=True)
    assert caldav_account.get_event(first, uid) is not None

    connections.connect_calendar(calendar, [], sources["Second"])
    changes.reschedule_booking(booked.id, _at(day, 11), utcnow())
    run_worker(on_both, once=True)
    assert caldav_account.get_event(first, uid) is None
    assert caldav_account.get_event(second, uid) is not None

    connections.connect_calendar(calendar, [], None)
    changes.cancel_booking(booked.id, utcnow(), by="owner")
    run_worker(on_both, once=True)
    assert caldav_account.get_event(second, uid) is None


def test_a_calendar_being_read_is_not_due_and_a_page_starts_no_second_read(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, make_calendar: MakeCalendar, http_stub: HTTPStub
):
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner)
    source = connections.add_feed(owner, http_stub.route("/f.ics", _feed()), utcnow()).calendars[0]
    connections.connect_calendar(calendar, [source.id], None)
    later = utcnow() + timedelta(minutes=10)
    db.session.execute(
        sa.update(ConnectedCalendar).values(
            reading_until=later + timedelta(seconds=30), next_sync_at=utcnow()
        )
    )
    db.session.commit()
    assert connections.sync_next_due(later) is None
    calendar = db.session.get_one(Calendar, calendar.id)
    connections.refresh_stale(calendar, later)
    assert http_stub.hits["/f.ics"] == 1  # only the add's


def test_a_feed_the_parser_chokes_on_is_that_feeds_error_and_frees_it(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, http_stub: HTTPStub
):
    feed = connections.add_feed(make_owner(), http_stub.route("/f.ics", _feed()), utcnow()).calendars[0]
    http_stub.route(
        "/f.ics", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nTZID:X\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n"
    )
    result = connections.sync_source(feed.id)
    assert not result.ok and not result.skipped
    db.session.rollback()
    source = db.session.get_one(ConnectedCalendar, feed.id)
    assert source.error and "iCalendar" in source.error
    assert source.reading_until is None and source.failures == 1


def test_an_error_never_quotes_what_the_server_sent(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, http_stub: HTTPStub
):
    page = (
        b'<html><a href="https://calendar.example.com/ical/secret-token-abc123/basic.ics">Sign in</a></html>'
    )
    with pytest.raises(RemoteError) as refused:
        connections.add_feed(make_owner(), http_stub.route("/f.ics", page), utcnow())
    assert "secret-token-abc123" not in str(refused.value)
    assert "does not give an iCalendar feed" in str(refused.value)


def test_a_read_is_bounded_in_all_not_only_per_socket_read():
    started = time.monotonic()
    with pytest.raises(RemoteError, match=r"took longer than 0\.2 s in all"):
        remote.within(0.2, time.sleep, 3)
    assert time.monotonic() - started < 2


def test_deleting_an_event_the_owner_removed_by_hand_is_done(
    private_ok: Flask,
    ctx: None,
    make_owner: MakeOwner,
    make_calendar: MakeCalendar,
    caldav_account: CalDAVAccount,
):
    work = caldav_account.make_calendar("work", "Work")
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner)
    source = _connect(owner, caldav_account).calendars[0]
    connections.connect_calendar(calendar, [], source.id)
    booked = bookings.book_calendar(calendar.id, _at(_day(), 9), IVY, form_id=None, now=utcnow())
    run_worker(private_ok, once=True)
    assert caldav_account.delete_event(work, booking_uid(db.session.get_one(Booking, booked.id)))
    changes.cancel_booking(booked.id, utcnow(), by="owner")
    run_worker(private_ok, once=True)
    writes = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "calendar")).all()
    assert [m.status for m in writes] == ["delivered", "delivered"]


def test_a_slot_before_a_read_that_starts_after_midnight_keeps_its_buffer(
    on_both: Flask, make_owner: MakeOwner, make_calendar: MakeCalendar, http_stub: HTTPStub
):
    # Found in review: a read of nine days from 00:40 left out the day before, whose 23:30 slot
    # a busy time from 00:45 reaches with its buffer of an hour.
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner, buffer_minutes=60)
    db.session.execute(
        sa.update(Calendar)
        .where(Calendar.id == calendar.id)
        .values(weekly_hours={str(d): [["18:00", "24:00"]] for d in range(7)})
    )
    source = connections.add_feed(owner, http_stub.route("/f.ics", _feed()), utcnow()).calendars[0]
    connections.connect_calendar(calendar, [source.id], None)
    after = datetime(2026, 6, 1, 0, 40, tzinfo=BERLIN).astimezone(UTC)
    boundary = after + timedelta(days=9)  # where the second read begins: 00:40 on the 10th
    busy = boundary + timedelta(minutes=5)
    db.session.execute(
        sa.insert(BusyInterval),
        [
            {
                "source_id": source.id,
                "start_at": busy,
                "end_at": busy + timedelta(minutes=30),
                "floating": False,
            }
        ],
    )
    db.session.commit()
    rules = availability_of(db.session.get_one(Calendar, calendar.id))
    horizon = after + timedelta(days=rules.days_ahead + 2)
    read = list(busycopy.iter_busy(calendar.id, rules, after, horizon))
    every = busycopy.busy_for(calendar.id, BERLIN, after, horizon)
    slots = list(iter_slots(rules, [], after, more_busy=read))
    assert slots == available_slots(rules, every, after)
    assert datetime(2026, 6, 9, 23, 30, tzinfo=BERLIN) not in slots  # its end plus the hour reaches 00:45


def test_secrets_stay_out_of_reprs():
    account = caldav_source.Account("https://dav.example.com/", "ann", "hunter2-secret", remote.Guard())
    assert "hunter2-secret" not in repr(account)


def test_the_same_account_is_connected_once(
    private_ok: Flask, ctx: None, make_owner: MakeOwner, caldav_account: CalDAVAccount
):
    caldav_account.make_calendar("work", "Work")
    owner = make_owner()
    _connect(owner, caldav_account)
    with pytest.raises(RemoteError, match="is connected already"):
        _connect(owner, caldav_account)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Connection)) == 1


def test_the_tests_trusted_address_counts_only_in_tests(sqlite_url: str):
    from tests.support.apps import make_test_app

    for testing, trusted in ((True, frozenset({"127.0.0.1"})), (False, frozenset())):
        app = make_test_app(sqlite_url, TESTING=testing, CONNECTIONS_TRUSTED_ADDRESSES=["127.0.0.1"])
        assert connections.guard_of(app).trusted == trusted


def test_a_cancel_while_the_write_is_on_its_way_leaves_no_event(
    private_ok: Flask,
    ctx: None,
    make_owner: MakeOwner,
    make_calendar: MakeCalendar,
    caldav_account: CalDAVAccount,
    monkeypatch: pytest.MonkeyPatch,
):
    work = caldav_account.make_calendar("work", "Work")
    owner = make_owner()
    calendar = _berlin_calendar(make_calendar, owner=owner)
    source = _connect(owner, caldav_account).calendars[0]
    connections.connect_calendar(calendar, [], source.id)
    booked = bookings.book_calendar(calendar.id, _at(_day(), 9), IVY, form_id=None, now=utcnow())
    uid = booking_uid(db.session.get_one(Booking, booked.id))
    put = caldav_source.put_event

    def put_then_cancelled(*args: Any, **kwargs: Any) -> Any:
        answer = put(*args, **kwargs)
        with private_ok.app_context():  # the invitee cancels meanwhile, and its DELETE went first
            changes.cancel_booking(booked.id, utcnow(), by="invitee")
        monkeypatch.setattr(caldav_source, "put_event", put)
        return answer

    monkeypatch.setattr(caldav_source, "put_event", put_then_cancelled)
    fan_out_events()
    message = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "calendar")).first()
    assert message is not None
    outcome = writeback.write_back(booked.id, source.id, "http://localhost")
    assert outcome.ok
    assert caldav_account.get_event(work, uid) is None
