"""Dashboard and account writes on SQLite wait for another writer instead of failing (issue 13, defect 4).

Another connection holds the file's write lock for half a second, as a busy
server or worker does, while a form is posted. A write that read first in a
deferred transaction would get ``database is locked`` at once (SQLite does
not wait to upgrade a read to a write) and answer 503; through the one
writer path (``BEGIN IMMEDIATE``) it waits its turn and succeeds.
"""

from __future__ import annotations

import re

import pytest

from oncecal.extensions import db
from oncecal.models import Calendar
from oncecal.services import owners
from tests.conftest import ALL_DAY
from tests.support.servers import PROJECT_ROOT
from tests.test_cli import write_lock_held_elsewhere
from tests.test_dashboard import CALENDAR_FORM, PASSWORD, csrf_of, log_in

# (page whose form is posted, the form's path, its fields, the answer), {calendar} filled in.
FORMS = [
    ("/dashboard/profile", "/dashboard/profile", {"name": "Olga O.", "email": "olga@example.com"}, 302),
    ("/dashboard/calendars/new", "/dashboard/calendars/new", CALENDAR_FORM, 302),
    (
        "/dashboard/calendars/{calendar}/edit",
        "/dashboard/calendars/{calendar}/edit",
        {**CALENDAR_FORM, "name": "Renamed", "slug": "intro"},
        302,
    ),
    (
        "/dashboard/calendars/{calendar}/links",
        "/dashboard/calendars/{calendar}/links",
        {"label": "Ann", "max_uses": "1"},
        302,
    ),
    ("/dashboard/", "/dashboard/calendars/{calendar}/share/generate", {}, 302),
    ("/dashboard/integrations", "/dashboard/api-keys", {"key-name": "CRM"}, 303),
]


@pytest.fixture
def logged_in(app, client):
    with app.app_context():
        owner = owners.create_owner("olga@example.com", "Olga Owner", PASSWORD)
        calendar = Calendar(owner_id=owner.id, name="Intro", slug="intro", weekly_hours=ALL_DAY)
        db.session.add(calendar)
        db.session.commit()
        client.calendar_id = calendar.id
    assert log_in(client, "olga@example.com").status_code == 302
    return client


@pytest.mark.parametrize(("form_page", "path", "fields", "answer"), FORMS, ids=[form[1] for form in FORMS])
def test_dashboard_form_waits_for_another_writer(logged_in, sqlite_url, form_page, path, fields, answer):
    calendar = logged_in.calendar_id
    token = csrf_of(logged_in.get(form_page.format(calendar=calendar)).get_data(as_text=True))

    with write_lock_held_elsewhere(sqlite_url, 0.5):
        # The API key form is prefixed ("key-"), the others are not.
        data = {"csrf_token": token, "key-csrf_token": token, **fields}
        response = logged_in.post(path.format(calendar=calendar), data=data)

    assert response.status_code == answer, response.get_data(as_text=True)[:500]


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/signup", {"name": "Nia", "email": "nia@example.com", "password": PASSWORD}),
        ("/password/forgot", {"email": "olga@example.com"}),
    ],
)
def test_account_form_waits_for_another_writer(logged_in, app, sqlite_url, path, fields):
    visitor = app.test_client()
    token = csrf_of(visitor.get(path).get_data(as_text=True))

    with write_lock_held_elsewhere(sqlite_url, 0.5):
        response = visitor.post(path, data={"csrf_token": token, **fields})

    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def test_nothing_but_write_transaction_commits():
    # A commit elsewhere ends a transaction that began deferred: on SQLite,
    # one that read first fails at once beside another writer.
    committing = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}"
        for folder in ("oncecal", "blueprints")
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
        if path != PROJECT_ROOT / "oncecal" / "db.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\.commit\(\)", line)
    ]
    assert committing == [], "write through oncecal.db.write_transaction instead"


def test_routes_and_commands_leave_transactions_to_the_services():
    # Services own their transactions (STYLE.md): a route or a CLI command that
    # opened one would decide what a service's writes are committed with.
    opening = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}"
        for path in [
            *sorted((PROJECT_ROOT / "blueprints").rglob("*.py")),
            PROJECT_ROOT / "oncecal" / "cli.py",
        ]
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "write_transaction" in line
    ]
    assert opening == [], "open the transaction in the service the route or command calls"
