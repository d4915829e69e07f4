"""The server `make run` starts (`flask --app app serve`, Waitress): its log, its trust, its stop."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from oncecal.extensions import db
from oncecal.models import Calendar, Owner, utcnow
from oncecal.services import apikeys
from tests.support.apps import TEST_SECRET, make_test_app
from tests.support.servers import (
    MAKE_RUN_SERVER,
    PROJECT_ROOT,
    Server,
    migrate,
    server_env,
    start_make_run_server,
    stop_server,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def make_run_server(tmp_path: Path) -> Iterator[Server]:
    """The server with no ONCECAL_BASE_URL: absolute URLs come from each request."""
    env = server_env(f"sqlite:///{tmp_path / 'serve.sqlite3'}", TEST_SECRET)
    migrate(env)
    server = start_make_run_server(env, tmp_path, own_base_url=False)
    yield server
    stop_server(server)


def test_make_run_starts_the_server_these_tests_start() -> None:
    recipe = (PROJECT_ROOT / "Makefile").read_text().partition("\nrun:")[2].partition("\n\n")[0]
    assert f"$(BIN)/{' '.join(MAKE_RUN_SERVER)} --port $(PORT)" in recipe


def test_every_request_is_in_the_access_log(make_run_server: Server) -> None:
    assert requests.get(f"{make_run_server.url}/healthz?from=test", timeout=5).status_code == 200
    assert requests.get(f"{make_run_server.url}/no-such-page", timeout=5).status_code == 404

    log = make_run_server.log()
    assert re.search(r'127\.0\.0\.1 "GET /healthz\?from=test HTTP/1\.1" 200 \d+ [\d.]+ ms', log), log
    assert '"GET /no-such-page HTTP/1.1" 404' in log, log


def test_forwarded_for_does_not_dodge_the_guessing_throttle(make_run_server: Server) -> None:
    # No proxy is trusted: each guess claims another client address, and
    # every one of them is still counted against the socket's own.
    answers = [
        requests.get(
            f"{make_run_server.url}/l/not-a-real-token-{i}",
            headers={"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"203.0.113.{i}"},
            timeout=5,
        ).status_code
        for i in range(25)
    ]
    assert answers[:20] == [404] * 20
    assert answers[20:] == [429] * 5


def test_forwarded_proto_and_host_do_not_change_absolute_urls(
    make_run_server: Server, tmp_path: Path
) -> None:
    app = make_test_app(f"sqlite:///{tmp_path / 'serve.sqlite3'}")
    with app.app_context():
        owner = Owner(email="olga@example.com", name="Olga", password_hash="not-a-real-hash")
        db.session.add(owner)
        db.session.add(Calendar(owner=owner, name="Intro", slug="intro"))
        db.session.commit()
        _key, raw_key = apikeys.create_api_key(owner, "test", utcnow())
        db.session.remove()
        db.engine.dispose()

    created = requests.post(
        f"{make_run_server.url}/api/v1/one-time-links",
        json={"calendar": "intro"},
        headers={
            "Authorization": f"Bearer {raw_key}",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "attacker.example",
        },
        timeout=10,
    )

    assert created.status_code == 201, created.text
    assert created.json()["url"].startswith(f"{make_run_server.url}/l/")


def test_ctrl_c_stops_the_server(make_run_server: Server) -> None:
    make_run_server.process.send_signal(signal.SIGINT)

    assert make_run_server.process.wait(timeout=10) == 0
