"""The dashboard's Connections page and a calendar's connected-calendar choices, through the test client."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask import Flask

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Calendar, CalendarSource, ConnectedCalendar, Connection, Owner
from oncecal.services import connections, owners
from tests.support.httpstub import HTTPStub
from tests.support.radicale import CalDAVAccount
from tests.test_dashboard import PASSWORD, form_post, log_in

pytestmark = pytest.mark.slow

FEED = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nX-WR-CALNAME:Team holidays\r\n"
    b"BEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20300107T100000Z\r\n"
    b"DTEND:20300107T110000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.fixture
def owner(app: Flask):
    app.config["CONNECTIONS_ALLOW_PRIVATE"] = True
    with app.app_context():
        made = owners.create_owner("olga@example.com", "Olga Owner", PASSWORD)
        return SimpleNamespace(id=made.id, email=made.email)


@pytest.fixture
def calendar(app: Flask, owner: SimpleNamespace) -> SimpleNamespace:
    with app.app_context():
        made = Calendar(owner_id=owner.id, name="Intro", slug="intro")
        db.session.add(made)
        db.session.commit()
        return SimpleNamespace(id=made.id)


@pytest.fixture
def logged_in(client, owner):
    assert log_in(client, owner.email).status_code == 302
    return client


def _count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def test_a_feed_is_added_shown_without_its_address_synced_and_removed(
    app: Flask, logged_in, http_stub: HTTPStub
):
    url = http_stub.route("/private/s3cr3t-token/basic.ics", FEED)
    added = form_post(
        logged_in, "/dashboard/connections/feed", {"feed-url": url}, page="/dashboard/connections"
    )
    assert added.status_code == 303
    page = logged_in.get("/dashboard/connections").get_data(as_text=True)
    assert "Connected the feed “Team holidays”." in page
    assert "Team holidays" in page and "Up to date" in page
    assert "s3cr3t-token" not in page and url not in page

    with app.app_context():
        connection_id = db.session.scalar(sa.select(Connection.id))
    http_stub.route("/private/s3cr3t-token/basic.ics", b"gone", status=500)
    synced = form_post(
        logged_in, f"/dashboard/connections/{connection_id}/sync", {}, page="/dashboard/connections"
    )
    assert synced.status_code == 303
    page = logged_in.get("/dashboard/connections").get_data(as_text=True)
    assert "Could not read 1 of 1 calendars: The feed answered HTTP 500." in page
    assert "Cannot read" in page and "its busy times still count" in page

    removed = form_post(
        logged_in, f"/dashboard/connections/{connection_id}/remove", {}, page="/dashboard/connections"
    )
    assert removed.status_code == 303
    assert _count(app, Connection) == 0


def test_a_bad_feed_is_shown_on_its_field_with_the_input_kept(app: Flask, logged_in, http_stub: HTTPStub):
    url = http_stub.route("/nope.ics", b"<html>login</html>")
    answer = form_post(
        logged_in, "/dashboard/connections/feed", {"feed-url": url}, page="/dashboard/connections"
    )
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "does not give an iCalendar feed" in html and f'value="{url}"' in html
    assert _count(app, Connection) == 0


def test_a_refused_password_is_shown_on_the_password_and_never_echoed(
    app: Flask, logged_in, caldav_account: CalDAVAccount
):
    caldav_account.make_calendar("work", "Work")
    data = {
        "caldav-url": caldav_account.url,
        "caldav-username": caldav_account.username,
        "caldav-password": "wrong-pw-123",
    }
    answer = form_post(logged_in, "/dashboard/connections/caldav", data, page="/dashboard/connections")
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "refused the username or password" in html and "wrong-pw-123" not in html
    assert caldav_account.username in html
    assert _count(app, Connection) == 0

    data["caldav-password"] = caldav_account.password
    assert (
        form_post(logged_in, "/dashboard/connections/caldav", data, page="/dashboard/connections").status_code
        == 303
    )
    page = logged_in.get("/dashboard/connections").get_data(as_text=True)
    assert "1 calendar found" in page and "Work" in page and caldav_account.password not in page


def test_a_calendar_chooses_what_it_checks_and_where_bookings_go(
    app: Flask,
    logged_in,
    calendar,
    caldav_account: CalDAVAccount,
    http_stub: HTTPStub,
):
    caldav_account.make_calendar("work", "Work")
    data = {
        "caldav-url": caldav_account.url,
        "caldav-username": caldav_account.username,
        "caldav-password": caldav_account.password,
    }
    form_post(logged_in, "/dashboard/connections/caldav", data, page="/dashboard/connections")
    form_post(
        logged_in,
        "/dashboard/connections/feed",
        {"feed-url": http_stub.route("/f.ics", FEED)},
        page="/dashboard/connections",
    )
    with app.app_context():
        work, feed = (
            s.id for s in db.session.scalars(sa.select(ConnectedCalendar).order_by(ConnectedCalendar.id))
        )
    path = f"/dashboard/calendars/{calendar.id}/connections"
    page = logged_in.get(path).get_data(as_text=True)
    assert "Check for conflicts" in page and "Add bookings to" in page
    assert page.count('name="write"') == 2  # none, and the CalDAV calendar: a feed cannot receive bookings

    saved = form_post(logged_in, path, {"check": [str(work), str(feed)], "write": str(work)})
    assert saved.status_code == 303
    with app.app_context():
        rows = {(r.source_id, r.checks, r.writes) for r in db.session.scalars(sa.select(CalendarSource))}
        assert rows == {(work, True, True), (feed, True, False)}
        assert db.session.scalar(sa.select(Owner.id)) is not None
    page = logged_in.get(path).get_data(as_text=True)
    assert "checked" in page

    refused = form_post(logged_in, path, {"check": [], "write": str(feed)})
    assert refused.status_code == 400 and "Not a valid choice" in refused.get_data(as_text=True)
    page = logged_in.get("/dashboard/connections").get_data(as_text=True)
    assert "Intro" in page and "receives bookings" in page


def test_another_owner_cannot_touch_a_connection(app: Flask, client, owner, http_stub: HTTPStub):
    log_in(client, owner.email)
    form_post(
        client,
        "/dashboard/connections/feed",
        {"feed-url": http_stub.route("/f.ics", FEED)},
        page="/dashboard/connections",
    )
    with app.app_context():
        connection_id = db.session.scalar(sa.select(Connection.id))
        owners.create_owner("mallory@example.com", "Mallory", PASSWORD)
    client.post("/logout", data={})
    other = app.test_client()
    log_in(other, "mallory@example.com")
    answer = form_post(
        other, f"/dashboard/connections/{connection_id}/remove", {}, page="/dashboard/connections"
    )
    assert answer.status_code == 404
    assert "Team holidays" not in other.get("/dashboard/connections").get_data(as_text=True)
    assert _count(app, Connection) == 1


def test_a_refused_password_is_replaced_without_losing_the_calendar_choices(
    app: Flask, logged_in, calendar, caldav_account: CalDAVAccount
):
    caldav_account.make_calendar("work", "Work")
    data = {
        "caldav-url": caldav_account.url,
        "caldav-username": caldav_account.username,
        "caldav-password": caldav_account.password,
    }
    form_post(logged_in, "/dashboard/connections/caldav", data, page="/dashboard/connections")
    with app.app_context():
        connection = db.session.scalars(sa.select(Connection)).one()
        source_id = connection.calendars[0].id
        connections.connect_calendar(db.session.get_one(Calendar, calendar.id), [source_id], source_id)
        connection = db.session.scalars(sa.select(Connection)).one()
        sealed = runtime().secrets.seal("the-old-password")  # the owner changed it at the server
        connection.secret, connection.key_id = sealed.token, sealed.key_id
        db.session.commit()
        connections.sync_source(source_id)
        connection_id = connection.id
    page = logged_in.get("/dashboard/connections").get_data(as_text=True)
    assert "Password refused" in page and "Use this password" in page

    path = f"/dashboard/connections/{connection_id}/password"
    field = f"password-{connection_id}-password"
    refused = form_post(logged_in, path, {field: "still-wrong"}, page="/dashboard/connections")
    assert refused.status_code == 400 and "refused the username or password" in refused.get_data(as_text=True)
    accepted = form_post(logged_in, path, {field: caldav_account.password}, page="/dashboard/connections")
    assert accepted.status_code == 303
    with app.app_context():
        connection = db.session.get_one(Connection, connection_id)
        assert runtime().secrets.open(connection.secret, connection.key_id) == caldav_account.password
        assert connection.calendars[0].error is None
        assert connections.sources_of(db.session.get_one(Calendar, calendar.id)) == ([source_id], source_id)
        assert connections.sync_source(source_id).ok
