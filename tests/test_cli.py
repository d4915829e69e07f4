"""The command line of PRODUCT.md, run through Flask's CLI runner."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from oncecal.cli import parse_duration
from oncecal.extensions import db
from oncecal.models import Calendar, OneTimeLink, Owner, utcnow
from tests.apispec import LINK_FIELDS


def run(runner, *args: str):
    result = runner.invoke(args=list(args), catch_exceptions=False)
    return result


@pytest.fixture
def calendar_slug(runner) -> str:
    assert (
        run(
            runner,
            "owner",
            "create",
            "--email",
            "Olga@Example.com",
            "--name",
            "Olga",
            "--password",
            "s3cret-pass",
        ).exit_code
        == 0
    )
    result = run(
        runner,
        "calendar",
        "create",
        "--owner",
        "olga@example.com",
        "--name",
        "Deep Work Review",
        "--timezone",
        "Europe/Berlin",
    )
    assert result.exit_code == 0, result.output
    return "deep-work-review"


def test_owner_and_calendar_are_created_with_defaults(app, runner, calendar_slug):
    with app.app_context():
        owner = db.session.scalar(sa.select(Owner))
        calendar = db.session.scalar(sa.select(Calendar))
        assert owner.email == "olga@example.com"
        assert owner.password_hash != "s3cret-pass"
        assert calendar.slug == calendar_slug
        assert calendar.timezone == "Europe/Berlin"
        assert calendar.duration_minutes == 30
        assert calendar.public_page_enabled
        assert calendar.weekly_hours == {str(d): [["09:00", "17:00"]] for d in range(5)}


def test_link_create_prints_a_working_url_as_the_last_line(app, runner, client, calendar_slug):
    result = run(runner, "link", "create", calendar_slug, "--label", "For Ann", "--expires-in", "7d")
    url = result.output.strip().splitlines()[-1]
    assert url.startswith("http://localhost/l/")
    assert client.get(urlsplit(url).path).status_code == 200
    with app.app_context():
        link = db.session.scalar(sa.select(OneTimeLink))
        assert link.label == "For Ann"
        assert timedelta(days=6, hours=23) < link.expires_at - utcnow() <= timedelta(days=7)


def test_link_create_json_prints_the_link_object(runner, calendar_slug):
    result = run(runner, "link", "create", calendar_slug, "--max-uses", "3", "--json")
    data = json.loads(result.output)
    assert set(data) == LINK_FIELDS
    assert data["status"] == "active" and data["max_uses"] == 3 and data["uses"] == 0
    assert data["calendar"] == calendar_slug and data["booking"] is None


def test_link_list_and_revoke(runner, client, calendar_slug):
    url = run(runner, "link", "create", calendar_slug).output.strip().splitlines()[-1]
    link_id = json.loads(run(runner, "link", "list", calendar_slug, "--json").output)[0]["id"]
    assert "Revoked" in run(runner, "link", "revoke", str(link_id)).output
    assert (
        json.loads(run(runner, "link", "list", calendar_slug, "--status", "revoked", "--json").output)[0][
            "id"
        ]
        == link_id
    )
    assert json.loads(run(runner, "link", "list", calendar_slug, "--status", "active", "--json").output) == []
    assert client.get(urlsplit(url).path).status_code == 410


@pytest.mark.parametrize(
    "args",
    [
        ("calendar", "create", "--owner", "nobody@example.com", "--name", "X"),
        ("link", "create", "no-such-calendar"),
        ("link", "revoke", "999"),
    ],
)
def test_unknown_objects_are_clear_errors(runner, args):
    result = runner.invoke(args=list(args))
    assert result.exit_code != 0
    assert "no " in result.output


def test_bad_options_are_refused(runner, calendar_slug):
    assert runner.invoke(args=["link", "create", calendar_slug, "--expires-in", "soon"]).exit_code == 2
    assert runner.invoke(args=["link", "create", calendar_slug, "--max-uses", "0"]).exit_code == 2
    bad_zone = ["calendar", "create", "--owner", "olga@example.com", "--name", "Y", "--timezone", "Moon/Base"]
    assert runner.invoke(args=bad_zone).exit_code == 2
    taken = ["calendar", "create", "--owner", "olga@example.com", "--name", "Deep Work Review"]
    assert "taken" in runner.invoke(args=taken).output


def test_demo_is_idempotent_and_prints_a_fresh_link(app, runner, client):
    first = run(runner, "demo").output.strip().splitlines()
    second = run(runner, "demo").output.strip().splitlines()
    assert first[-1] != second[-1]
    assert any("demo@oncecal.test" in line for line in first)
    for url in (first[-1], second[-1]):
        assert client.get(urlsplit(url).path).status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Owner.id))) == 1
        assert db.session.scalar(sa.select(sa.func.count(Calendar.id))) == 1


@pytest.mark.parametrize(
    ("text", "seconds"), [("3600", 3600), ("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@contextmanager
def write_lock_held_elsewhere(sqlite_url: str, seconds: float) -> Iterator[None]:
    """Hold the SQLite file's write lock from another connection for ``seconds``, as a busy server does."""
    holder = sqlite3.connect(
        sqlite_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(seconds, holder.execute, ["COMMIT"])
    release.start()
    try:
        yield
    finally:
        release.join()
        holder.close()


@pytest.mark.parametrize(
    "command",
    [
        ["apikey", "create", "--owner", "olga@example.com"],
        ["link", "create", "deep-work-review", "--label", "Ann"],
        ["link", "revoke", "1"],
        ["calendar", "create", "--owner", "olga@example.com", "--name", "Second"],
        ["owner", "create", "--email", "new@example.com", "--name", "New", "--password", "long-password"],
        ["demo"],
    ],
    ids=" ".join,
)
def test_write_commands_wait_for_another_writer_instead_of_failing(
    runner, calendar_slug, sqlite_url, command
):
    assert run(runner, "link", "create", calendar_slug).exit_code == 0

    with write_lock_held_elsewhere(sqlite_url, 0.5):
        result = run(runner, *command)

    assert result.exit_code == 0, result.output
