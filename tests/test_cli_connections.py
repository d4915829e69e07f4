"""The command line of calendar connections as PRODUCT.md's table has it, against Radicale and a feed stub.

connection add|list|sync|remove and calendar connect, run through Flask's
CLI runner; what they store is counted in the database.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import BusyInterval, Calendar, CalendarSource, ConnectedCalendar, Connection, utcnow
from tests.support.httpstub import HTTPStub
from tests.support.radicale import CalDAVAccount, RadicaleServer, sample_event
from tests.support.servers import free_port

pytestmark = pytest.mark.slow

OWNER = "olga@example.com"
OTHER = "otto@example.com"
SLUG = "deep-work-review"
# A feed's secret address: the token in its path is what must never be shown back.
FEED_PATH = "/private/abc123token/basic.ics"
FEED_TOKEN = "abc123token"
CONNECTION_KEYS = {"id", "kind", "host", "calendars"}
CALENDAR_KEYS = {"id", "name", "last_good_read_at", "error"}


# `connection add --owner`, to be followed by the owner and the source.
ADD = ("connection", "add", "--owner")


def caldav(url: str, username: str, password: str) -> list[str]:
    """The options of a CalDAV source for `connection add`."""
    return ["--caldav", url, "--username", username, "--password", password]


def run(runner: FlaskCliRunner, *args: str, input: str | None = None) -> Any:
    return runner.invoke(args=list(args), input=input, catch_exceptions=False)


def ok(runner: FlaskCliRunner, *args: str, input: str | None = None) -> Any:
    result = run(runner, *args, input=input)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def private_ok(app: Flask) -> Flask:
    """The app with loopback targets allowed (every test server is on loopback)."""
    app.config["CONNECTIONS_ALLOW_PRIVATE"] = True
    return app


@pytest.fixture
def owner(private_ok: Flask, runner: FlaskCliRunner) -> str:
    """Olga, with a calendar in Berlin (SLUG), made by the CLI; another owner, Otto, too."""
    ok(runner, "owner", "create", "--email", OWNER, "--name", "Olga", "--password", "s3cret-pass")
    ok(runner, "owner", "create", "--email", OTHER, "--name", "Otto", "--password", "s3cret-pass")
    ok(
        runner,
        "calendar",
        "create",
        "--owner",
        OWNER,
        "--name",
        "Deep Work Review",
        "--timezone",
        "Europe/Berlin",
    )
    return OWNER


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def stored_nothing(app: Flask) -> bool:
    return (
        count(app, Connection) == 0 and count(app, ConnectedCalendar) == 0 and count(app, BusyInterval) == 0
    )


def _soon(hours: int = 72) -> datetime:
    return (utcnow() + timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)


def _feed(*events: tuple[str, datetime]) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//feed//EN", "X-WR-CALNAME:Team holidays"]
    for uid, start in events:
        stamp = "%Y%m%dT%H%M%SZ"
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART:{start.strftime(stamp)}",
            f"DTEND:{(start + timedelta(hours=1)).strftime(stamp)}",
            "END:VEVENT",
        ]
    return ("\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n").encode()


def two_calendars(account: CalDAVAccount, *, with_events: bool = False) -> dict[str, str]:
    """Make Work and Home & family on the account; with an event in each a few days from now."""
    urls = {
        "Work": account.make_calendar("work", "Work"),
        "Home & family": account.make_calendar("home", "Home & family"),
    }
    if with_events:
        account.put_event(urls["Work"], "dentist", sample_event("dentist", start=_soon(72)))
        account.put_event(urls["Home & family"], "school", sample_event("school", start=_soon(96)))
    return urls


def add_caldav(
    runner: FlaskCliRunner, account: CalDAVAccount, owner: str = OWNER
) -> tuple[int, dict[str, int]]:
    """Run `connection add --caldav`; return the connection id and {name: calendar id} as printed."""
    result = ok(runner, *ADD, owner, *caldav(account.url, account.username, account.password))
    return parse_added(result.output)


def add_feed(runner: FlaskCliRunner, url: str, owner: str = OWNER) -> tuple[int, dict[str, int]]:
    return parse_added(ok(runner, *ADD, owner, "--ics-url", url).output)


def parse_added(output: str) -> tuple[int, dict[str, int]]:
    first, *rest = output.splitlines()
    matched = re.fullmatch(r"connection (\d+)", first)
    assert matched, output
    found = {}
    for line in rest:
        source_id, name = line.split("\t")
        found[name] = int(source_id)
    return int(matched[1]), found


# --- connection add -------------------------------------------------------------


def test_add_caldav_prints_the_connection_then_each_calendar_found(
    private_ok: Flask, runner: FlaskCliRunner, owner: str, caldav_account: CalDAVAccount
):
    account = caldav_account
    two_calendars(account)
    result = ok(runner, *ADD, owner, *caldav(account.url, account.username, account.password))

    with private_ok.app_context():
        connection = db.session.scalar(sa.select(Connection))
        assert connection is not None and connection.kind == "caldav"
        expected = [f"connection {connection.id}", *(f"{s.id}\t{s.name}" for s in connection.calendars)]
        assert sorted(s.name for s in connection.calendars) == ["Home & family", "Work"]
    assert result.output.splitlines() == expected


def test_add_caldav_reads_the_password_from_standard_input(
    private_ok: Flask, runner: FlaskCliRunner, owner: str, caldav_account: CalDAVAccount
):
    account = caldav_account
    two_calendars(account)
    result = ok(
        runner, *ADD, owner, *caldav(account.url, account.username, "-"), input=account.password + "\n"
    )

    connection_id, found = parse_added(result.output)
    assert sorted(found) == ["Home & family", "Work"]
    assert caldav_account.password not in result.output
    with private_ok.app_context():
        connection = db.session.get_one(Connection, connection_id)
        assert runtime().secrets.open(connection.secret, connection.key_id) == caldav_account.password


def test_add_caldav_with_a_wrong_password_exits_1_and_stores_nothing(
    private_ok: Flask, runner: FlaskCliRunner, owner: str, caldav_account: CalDAVAccount
):
    two_calendars(caldav_account)
    result = run(
        runner, *ADD, owner, *caldav(caldav_account.url, caldav_account.username, "not-the-password")
    )
    assert result.exit_code == 1
    assert "refused the username or password" in result.output
    assert stored_nothing(private_ok)


def test_add_caldav_of_an_unreachable_server_exits_1_and_stores_nothing(
    private_ok: Flask, runner: FlaskCliRunner, owner: str
):
    result = run(runner, *ADD, owner, *caldav(f"http://127.0.0.1:{free_port()}/", "u", "p"))
    assert result.exit_code == 1
    assert "Could not connect" in result.output
    assert stored_nothing(private_ok)


def test_add_feed_prints_the_connection_and_the_feed_by_its_name(
    private_ok: Flask, runner: FlaskCliRunner, owner: str, http_stub: HTTPStub
):
    url = http_stub.route(FEED_PATH, _feed(("x", _soon())), headers={"Content-Type": "text/calendar"})
    result = ok(runner, *ADD, owner, "--ics-url", url)

    with private_ok.app_context():
        connection = db.session.scalar(sa.select(Connection))
        assert connection is not None and connection.kind == "ics"
        source = connection.calendars[0]
        assert result.output.splitlines() == [f"connection {connection.id}", f"{source.id}\tTeam holidays"]
    assert count(private_ok, BusyInterval) == 1


def test_add_feed_that_answers_404_exits_1_and_stores_nothing(
    private_ok: Flask, runner: FlaskCliRunner, owner: str, http_stub: HTTPStub
):
    url = http_stub.route(FEED_PATH, b"not here", status=404)
    result = run(runner, *ADD, owner, "--ics-url", url)
    assert result.exit_code == 1
    assert "HTTP 404" in result.output
    assert stored_nothing(private_ok)


@pytest.mark.parametrize(
    "source",
    [
        [*caldav("http://127.0.0.1:1/", "u", "p"), "--ics-url", "http://127.0.0.1:1/f.ics"],
        [],
        ["--caldav", "http://127.0.0.1:1/", "--username", "u"],
        ["--caldav", "http://127.0.0.1:1/", "--password", "p"],
    ],
    ids=["both sources", "no source", "no password", "no username"],
)
def test_add_with_both_or_neither_source_is_a_usage_error(
    private_ok: Flask, runner: FlaskCliRunner, owner: str, source: list[str]
):
    result = run(runner, *ADD, owner, *source)
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.output
    assert stored_nothing(private_ok)


def test_add_for_an_unknown_owner_exits_1(private_ok: Flask, runner: FlaskCliRunner, http_stub: HTTPStub):
    url = http_stub.route(FEED_PATH, _feed())
    result = run(runner, *ADD, "nobody@example.com", "--ics-url", url)
    assert result.exit_code == 1 and "no owner" in result.output
    assert http_stub.hits[FEED_PATH] == 0
    assert stored_nothing(private_ok)


# --- connection list ------------------------------------------------------------


def test_list_json_has_exactly_the_documented_shape(
    private_ok: Flask, runner: FlaskCliRunner, owner: str, caldav_account: CalDAVAccount, http_stub: HTTPStub
):
    two_calendars(caldav_account)
    caldav_id, calendars = add_caldav(runner, caldav_account)
    feed_id, feeds = add_feed(runner, http_stub.route(FEED_PATH, _feed(("x", _soon()))))

    items = json.loads(ok(runner, "connection", "list", "--owner", owner, "--json").output)

    assert [set(item) for item in items] == [CONNECTION_KEYS, CONNECTION_KEYS]
    assert [(i["id"], i["kind"], i["host"]) for i in items] == [
        (caldav_id, "caldav", "127.0.0.1"),
        (feed_id, "ics", "127.0.0.1"),
    ]
    listed = [source for item in items for source in item["calendars"]]
    assert all(set(source) == CALENDAR_KEYS for source in listed)
    assert {s["name"]: s["id"] for s in listed} == {**calendars, **feeds}
    for source in listed:
        assert source["error"] is None
        assert source["last_good_read_at"].endswith("Z")
        read_at = datetime.fromisoformat(source["last_good_read_at"])
        assert utcnow() - timedelta(minutes=1) < read_at <= utcnow()
    assert json.loads(ok(runner, "connection", "list", "--owner", OTHER, "--json").output) == []


def test_list_never_shows_the_password_or_the_feed_url(
    private_ok: Flask, runner: FlaskCliRunner, owner: str, caldav_account: CalDAVAccount, http_stub: HTTPStub
):
    two_calendars(caldav_account)
    add_caldav(runner, caldav_account)
    feed_url = http_stub.route(FEED_PATH, _feed(("x", _soon())))
    add_feed(runner, feed_url)

    text = ok(runner, "connection", "list", "--owner", owner).output
    as_json = ok(runner, "connection", "list", "--owner", owner, "--json").output

    assert "Work" in text and "Team holidays" in text
    for output in (text, as_json):
        assert caldav_account.password not in output
        assert feed_url not in output and FEED_PATH not in output and FEED_TOKEN not in output


def test_list_never_shows_the_feed_url_after_the_feed_server_went_away(
    private_ok: Flask, runner: FlaskCliRunner, owner: str, http_stub: HTTPStub
):
    feed_id, _ = add_feed(runner, http_stub.route(FEED_PATH, _feed(("x", _soon()))))
    http_stub.stop()  # the feed's host now refuses connections
    assert run(runner, "connection", "sync", str(feed_id)).exit_code == 1

    text = ok(runner, "connection", "list", "--owner", owner).output
    items = json.loads(ok(runner, "connection", "list", "--owner", owner, "--json").output)

    error = items[0]["calendars"][0]["error"]
    assert error and "Could not connect" in error
    assert FEED_TOKEN not in error
    assert FEED_TOKEN not in text


# --- connection sync ------------------------------------------------------------


def test_sync_exits_0_when_every_calendar_is_read(
    private_ok: Flask, runner: FlaskCliRunner, owner: str, caldav_account: CalDAVAccount
):
    urls = two_calendars(caldav_account, with_events=True)
    connection_id, calendars = add_caldav(runner, caldav_account)
    assert count(private_ok, BusyInterval) == 2

    result = ok(runner, "connection", "sync", str(connection_id))
    assert sorted(result.output.splitlines()) == sorted(
        f"{i}\t{name}\tunchanged" for name, i in calendars.items()
    )

    caldav_account.put_event(urls["Work"], "lunch", sample_event("lunch", start=_soon(120)))
    result = ok(runner, "connection", "sync", str(connection_id))
    assert f"{calendars['Work']}\tWork\tchanged" in result.output.splitlines()
    assert count(private_ok, BusyInterval) == 3


def test_sync_of_a_stopped_server_exits_1_and_keeps_the_busy_copy(
    private_ok: Flask,
    runner: FlaskCliRunner,
    owner: str,
    caldav_account: CalDAVAccount,
    radicale_server: RadicaleServer,
):
    two_calendars(caldav_account, with_events=True)
    connection_id, _ = add_caldav(runner, caldav_account)
    assert count(private_ok, BusyInterval) == 2

    radicale_server.stop()
    try:
        result = run(runner, "connection", "sync", str(connection_id))
    finally:
        radicale_server.start()

    assert result.exit_code == 1
    assert "failed: Could not connect" in result.output
    assert "the last good copy still counts" in result.output
    assert count(private_ok, BusyInterval) == 2
    items = json.loads(ok(runner, "connection", "list", "--owner", owner, "--json").output)
    for source in items[0]["calendars"]:
        assert "Could not connect" in source["error"] and source["last_good_read_at"] is not None


def test_sync_of_a_feed_answering_500_exits_1_and_keeps_the_busy_copy(
    private_ok: Flask, runner: FlaskCliRunner, owner: str, http_stub: HTTPStub
):
    feed_id, _ = add_feed(runner, http_stub.route(FEED_PATH, _feed(("x", _soon()), ("y", _soon(80)))))
    assert count(private_ok, BusyInterval) == 2

    http_stub.route(FEED_PATH, b"oops", status=500)
    result = run(runner, "connection", "sync", str(feed_id))

    assert result.exit_code == 1
    assert "HTTP 500" in result.output
    assert count(private_ok, BusyInterval) == 2


def test_sync_of_an_unknown_connection_exits_1(private_ok: Flask, runner: FlaskCliRunner, owner: str):
    result = run(runner, "connection", "sync", "999")
    assert result.exit_code == 1 and "no connection with id 999" in result.output


# --- connection remove ----------------------------------------------------------


def test_remove_deletes_the_connection_and_its_busy_times_at_once(
    private_ok: Flask,
    runner: FlaskCliRunner,
    owner: str,
    caldav_account: CalDAVAccount,
    http_stub: HTTPStub,
):
    two_calendars(caldav_account, with_events=True)
    caldav_id, calendars = add_caldav(runner, caldav_account)
    feed_id, feeds = add_feed(runner, http_stub.route(FEED_PATH, _feed(("x", _soon()))))
    work = calendars["Work"]
    ok(runner, "calendar", "connect", SLUG, "--check", str(work), "--write", str(work))
    assert count(private_ok, BusyInterval) == 3

    result = ok(runner, "connection", "remove", str(caldav_id))

    assert result.output.strip() == f"Removed connection {caldav_id}"
    with private_ok.app_context():
        assert db.session.get(Connection, caldav_id) is None
        assert list(db.session.scalars(sa.select(ConnectedCalendar.id))) == [feeds["Team holidays"]]
        left = db.session.scalars(sa.select(BusyInterval.source_id)).all()
        assert left == [feeds["Team holidays"]]  # the feed's copy stays
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CalendarSource)) == 0
        assert not db.session.scalar(sa.select(Calendar.checks_busy).where(Calendar.slug == SLUG))
    listed = json.loads(ok(runner, "connection", "list", "--owner", owner, "--json").output)
    assert [item["id"] for item in listed] == [feed_id]
    assert run(runner, "connection", "remove", str(caldav_id)).exit_code == 1


# --- calendar connect -----------------------------------------------------------


@pytest.fixture
def connected(
    runner: FlaskCliRunner, owner: str, caldav_account: CalDAVAccount, http_stub: HTTPStub
) -> dict[str, int]:
    """Olga's Work, Home & family (CalDAV) and Team holidays (a feed): {name: connected calendar id}."""
    two_calendars(caldav_account)
    _, calendars = add_caldav(runner, caldav_account)
    _, feeds = add_feed(runner, http_stub.route(FEED_PATH, _feed()))
    return {**calendars, **feeds}


def _state(app: Flask) -> set[tuple[int, bool, bool]]:
    with app.app_context():
        return {
            (row.source_id, row.checks, row.writes)
            for row in db.session.scalars(
                sa.select(CalendarSource).join(Calendar).where(Calendar.slug == SLUG)
            )
        }


def _check_line(connected: dict[str, int], *names: str) -> str:
    return "check: " + ", ".join(f"{connected[n]} {n}" for n in sorted(names, key=connected.__getitem__))


def test_connect_prints_which_calendars_check_and_which_is_written(
    private_ok: Flask, runner: FlaskCliRunner, connected: dict[str, int]
):
    work, home, feed = connected["Work"], connected["Home & family"], connected["Team holidays"]
    result = ok(runner, "calendar", "connect", SLUG, "--check", f"{feed},{work},{home}", "--write", str(work))

    assert result.output.splitlines() == [
        _check_line(connected, "Work", "Home & family", "Team holidays"),
        f"write: {work} Work",
    ]
    assert _state(private_ok) == {(work, True, True), (home, True, False), (feed, True, False)}


def test_connect_without_write_keeps_the_calendar_that_receives_bookings(
    private_ok: Flask, runner: FlaskCliRunner, connected: dict[str, int]
):
    work, home = connected["Work"], connected["Home & family"]
    ok(runner, "calendar", "connect", SLUG, "--check", str(work), "--write", str(home))

    result = ok(runner, "calendar", "connect", SLUG, "--check", str(work))
    assert result.output.splitlines() == [f"check: {work} Work", f"write: {home} Home & family"]

    result = ok(runner, "calendar", "connect", SLUG, "--check", "none")
    assert result.output.splitlines() == ["check: none", f"write: {home} Home & family"]
    assert _state(private_ok) == {(home, False, True)}
    with private_ok.app_context():
        assert not db.session.scalar(sa.select(Calendar.checks_busy).where(Calendar.slug == SLUG))


def test_connect_none_and_none_clears_both(
    private_ok: Flask, runner: FlaskCliRunner, connected: dict[str, int]
):
    work = connected["Work"]
    ok(runner, "calendar", "connect", SLUG, "--check", str(work), "--write", str(work))
    result = ok(runner, "calendar", "connect", SLUG, "--check", "none", "--write", "none")
    assert result.output.splitlines() == ["check: none", "write: none"]
    assert _state(private_ok) == set()


def test_connect_a_feed_as_write_exits_1_and_changes_nothing(
    private_ok: Flask, runner: FlaskCliRunner, connected: dict[str, int]
):
    work, feed = connected["Work"], connected["Team holidays"]
    ok(runner, "calendar", "connect", SLUG, "--check", str(work), "--write", str(work))

    result = run(runner, "calendar", "connect", SLUG, "--check", str(feed), "--write", str(feed))

    assert result.exit_code == 1
    assert "Team holidays is a feed" in result.output
    assert _state(private_ok) == {(work, True, True)}


@pytest.mark.parametrize("option", ["--check", "--write"])
def test_connect_another_owners_calendar_exits_1_and_changes_nothing(
    private_ok: Flask,
    runner: FlaskCliRunner,
    connected: dict[str, int],
    radicale_server: RadicaleServer,
    option: str,
):
    work = connected["Work"]
    ok(runner, "calendar", "connect", SLUG, "--check", str(work), "--write", str(work))
    others = CalDAVAccount(
        radicale_server.url, f"otto-{secrets.token_hex(4)}", "otto-password", radicale_server
    )
    radicale_server.add_user(others.username, others.password)
    others.make_calendar("otto", "Otto's")
    _, theirs = add_caldav(runner, others, owner=OTHER)
    foreign = theirs["Otto's"]

    args = (
        ["--check", str(foreign)] if option == "--check" else ["--check", str(work), "--write", str(foreign)]
    )
    result = run(runner, "calendar", "connect", SLUG, *args)

    assert result.exit_code == 1
    assert f"No connected calendar {foreign}" in result.output
    assert _state(private_ok) == {(work, True, True)}


@pytest.mark.parametrize(
    "args",
    [["--check", "one,two"], ["--check", "1", "--write", "1,2"], ["--write", "none"]],
    ids=["words", "two writers", "no check"],
)
def test_connect_bad_ids_are_usage_errors(runner: FlaskCliRunner, connected: dict[str, int], args: list[str]):
    assert run(runner, "calendar", "connect", SLUG, *args).exit_code == 2


def test_connect_an_unknown_calendar_exits_1(runner: FlaskCliRunner, connected: dict[str, int]):
    result = run(runner, "calendar", "connect", "no-such-calendar", "--check", "none")
    assert result.exit_code == 1 and "no calendar with slug" in result.output
