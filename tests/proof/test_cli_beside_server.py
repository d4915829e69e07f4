"""CLI writes beside a busy server (issue 13, defect 4).

Gunicorn (4 workers) takes bookings as fast as a few clients can send them
while the outbox worker (`flask --app app worker`) drains the backlog they
leave; beside them, the command line creates API keys, links and calendars
and revokes links, two commands at a time. Every write, in the requests, the
worker and the CLI, goes through the one writer path (``BEGIN IMMEDIATE`` on
SQLite), so a command waits its turn instead of failing with
``database is locked``.
"""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.proof.harness import BACKENDS, HTTP_TIMEOUT, OWNER_EMAIL, fresh_database, make_site
from tests.proof.report import Proof
from tests.support.pages import BookingPage
from tests.support.servers import run_flask, start_worker, stop_group

pytestmark = pytest.mark.slow

BOOKERS = 4
BACKLOG = 30
CLI_AT_ONCE = 2


def book(site_url: str, token: str, slot: str, i: int) -> int:
    """GET a link's form and POST it; return the POST's status (0: no answer)."""
    try:
        page = requests.get(f"{site_url}/l/{token}", timeout=HTTP_TIMEOUT)
        form = BookingPage.parse(page.text).form(slot, name=f"Invitee {i}", email=f"invitee{i}@example.com")
        return requests.post(
            f"{site_url}/l/{token}", data=form, allow_redirects=False, timeout=HTTP_TIMEOUT
        ).status_code
    except (requests.RequestException, AssertionError):
        return 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_writes_beside_a_busy_server(
    backend: str, proof: Proof, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    commands = proof.scale(4, 32)
    with fresh_database(backend, tmp_path, request) as url, make_site(url, tmp_path) as site:
        # Short meetings: slots enough for bookings to go on until the last command is done.
        calendar_id = site.new_calendar(duration_minutes=5)
        slug = site.calendar_slug(calendar_id)
        issued = site.issue_links(calendar_id, proof.scale(1500, 6000))
        to_revoke = site.issue_links(calendar_id, commands)
        slots = site.open_slots(calendar_id)
        assert len(slots) >= len(issued)
        # A backlog for the worker to start on, as after a restart.
        with ThreadPoolExecutor(max_workers=BOOKERS) as pool:
            backlog = list(pool.map(lambda i: book(site.url, issued[i][1], slots[i], i), range(BACKLOG)))
        assert backlog == [303] * BACKLOG, Counter(backlog)

        worker = start_worker({**site.env, "ONCECAL_BASE_URL": site.url}, tmp_path)
        stop = threading.Event()
        next_booking = iter(range(BACKLOG, len(issued)))
        booked: list[int] = []
        lock = threading.Lock()

        def booker() -> None:
            while not stop.is_set():
                with lock:
                    i = next(next_booking, None)
                if i is None:
                    return
                status = book(site.url, issued[i][1], slots[i], i)
                with lock:
                    booked.append(status)

        def command(n: int) -> subprocess.CompletedProcess[str]:
            match n % 4:
                case 0:
                    return run_flask(
                        site.env, "apikey", "create", "--owner", OWNER_EMAIL, "--name", f"key {n}"
                    )
                case 1:
                    return run_flask(site.env, "link", "create", slug, "--label", f"cli {n}")
                case 2:
                    return run_flask(site.env, "link", "revoke", str(to_revoke[n][0]))
                case _:
                    return run_flask(
                        site.env, "calendar", "create", "--owner", OWNER_EMAIL, "--name", f"CLI calendar {n}"
                    )

        try:
            with ThreadPoolExecutor(max_workers=BOOKERS) as bookers:
                running = [bookers.submit(booker) for _ in range(BOOKERS)]
                with ThreadPoolExecutor(max_workers=CLI_AT_ONCE) as cli:
                    results = list(cli.map(command, range(commands)))
                with lock:
                    busy_to_the_end = next(next_booking, None) is not None
                stop.set()
                for future in running:
                    future.result()
        finally:
            stop.set()
            stop_group(worker)

    locked = sum("database is locked" in r.stderr for r in results)
    failed = [r.stderr.strip().splitlines()[-3:] for r in results if r.returncode != 0]
    proof.record(
        "CLI writes beside a busy server",
        tried=(
            f"{commands} CLI writes (apikey create, link create, link revoke, calendar create; "
            f"{CLI_AT_ONCE} at a time) while {BOOKERS} clients book through gunicorn (4 workers) "
            f"and the worker drains a backlog of {BACKLOG} bookings' messages"
        ),
        expected=f"{commands} × exit 0, 0 × database is locked; bookings all 303, still going at the end",
        got=(
            f"{commands - len(failed)} × exit 0, {locked} × database is locked; "
            f"bookings {', '.join(f'{code} × {n}' for code, n in sorted(Counter(booked).items()))}, "
            f"{'still going' if busy_to_the_end else 'out of links'} at the end"
        ),
        ok=not failed and locked == 0 and busy_to_the_end and set(booked) == {303},
    )
    assert not failed, failed
