"""Idle sockets beside `make run`'s server (issue 13, defect 8).

A browser opens sockets it may never use (preconnects), and a slowloris
sends a request a byte at a time. The server `make run` starts faces
clients directly, so neither may hold it: with 50 sockets connected and
silent and 5 more stopped halfway through a request line, `/healthz` and a
booking page each answer within a second.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests

from tests.proof.harness import BACKENDS, fresh_database, make_site
from tests.proof.report import Proof
from tests.support.servers import start_make_run_server, stop_server

pytestmark = pytest.mark.slow

# What `make run` must bear (a browser's preconnects, a small slowloris), and many more.
IDLE_COUNTS = (50, 250)
HALF_SENT = 5
WITHIN = 1.0


@contextmanager
def idle_sockets(url: str, idle: int) -> Iterator[None]:
    """Hold ``idle`` silent connections and HALF_SENT stopped mid request line for the block."""
    host, port = url.removeprefix("http://").split(":")
    with ExitStack() as stack:
        for i in range(idle + HALF_SENT):
            sock = stack.enter_context(socket.create_connection((host, int(port)), timeout=5))
            if i >= idle:
                sock.sendall(b"GET /healthz HT")
        # Let the server take them in before the timed requests are sent.
        time.sleep(0.3)
        yield


def timed_get(url: str) -> tuple[int | str, float]:
    started = time.monotonic()
    try:
        status: int | str = requests.get(url, timeout=WITHIN * 5).status_code
    except requests.RequestException as error:
        status = type(error).__name__
    return status, time.monotonic() - started


@pytest.mark.parametrize("backend", BACKENDS)
def test_idle_sockets_do_not_hold_the_make_run_server(
    backend: str, proof: Proof, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    answers = {}
    with (
        fresh_database(backend, tmp_path, request) as url,
        make_site(url, tmp_path, start=False) as site,
    ):
        calendar_id = site.new_calendar()
        [(_link_id, token)] = site.issue_links(calendar_id, 1)
        server = start_make_run_server(site.env, tmp_path)
        try:
            # Rendered once before: what is timed is the wait, not a first render.
            assert requests.get(f"{server.url}/l/{token}", timeout=30).status_code == 200
            for idle in IDLE_COUNTS:
                with idle_sockets(server.url, idle):
                    answers[idle] = (timed_get(f"{server.url}/healthz"), timed_get(f"{server.url}/l/{token}"))
        finally:
            stop_server(server)

    for idle, (health, page) in answers.items():
        proof.record(
            "idle sockets beside make run's server",
            tried=(
                f"{idle} sockets connected and silent, {HALF_SENT} stopped mid request line, then GET "
                "/healthz and GET /l/<token> on `flask --app app serve` (Waitress, as `make run`)"
            ),
            expected=f"each 200 within {WITHIN:.0f} s",
            got=f"/healthz {health[0]} in {health[1]:.2f} s, /l/<token> {page[0]} in {page[1]:.2f} s",
            ok=all(status == 200 and seconds < WITHIN for status, seconds in (health, page)),
        )
