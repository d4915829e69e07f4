"""Abuse: guessing tokens and passwords is throttled per client (PRODUCT.md rule 7), in one
process with the in-memory storage and across gunicorn workers with Redis; unknown
tokens of every kind answer the same body in the same time.

Redis is shared with others: every key this file makes carries a prefix of its
own (ONCECAL_RATELIMIT_KEY_PREFIX) and only those keys are deleted afterwards.
"""

from __future__ import annotations

import os
import re
import secrets
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from oncecal.extensions import db
from oncecal.models import Booking, OneTimeLink
from tests.proof.hostile import BACKENDS, PASSWORD, Seeded, csrf_of, database_url, fresh_app, seed_owner
from tests.support.apps import TEST_SECRET
from tests.support.servers import Server, free_port, running_server, server_env

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=BACKENDS)
def guarded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Flask, Seeded]]:
    """The app with a small token-guessing limit, in-memory storage."""
    url = database_url(request, tmp_path, request.param)
    with fresh_app(url, TOKEN_FAILURE_LIMIT="5 per minute", RATELIMIT_STORAGE_URI="memory://") as app:
        yield app, seed_owner(app, "first")


def test_token_guessing_is_throttled_per_client_in_memory(guarded: tuple[Flask, Seeded], proof: Any) -> None:
    app, seeded = guarded
    guesser = app.test_client()
    guesser.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    statuses = [guesser.get(f"/l/{secrets.token_urlsafe(32)}").status_code for _ in range(8)]
    throttled = guesser.get(f"/l/{secrets.token_urlsafe(32)}")
    retry_after = int(throttled.headers.get("Retry-After", "0"))
    proof.record(
        "token guessing, in-memory storage",
        tried="9 unknown tokens from one client, limit 5 per minute",
        expected="404 × 5, then 429 with Retry-After in 1..60 s",
        got=" ".join(f"{code} × {n}" for code, n in Counter([*statuses, throttled.status_code]).items())
        + (
            ", then 429 with Retry-After in 1..60 s"
            if 1 <= retry_after <= 60
            else f", Retry-After {retry_after}"
        ),
        ok=statuses == [404] * 5 + [429] * 3 and throttled.status_code == 429 and 1 <= retry_after <= 60,
    )
    valid = guesser.get(f"/l/{seeded.tokens[1]}")
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    proof.record(
        "throttled client opens a valid link; another client guesses",
        tried="valid link from the throttled client; unknown token from another client",
        expected="200, 404",
        got=f"{valid.status_code}, {other.get(f'/l/{secrets.token_urlsafe(32)}').status_code}",
    )


def test_login_guessing_is_throttled_in_memory(guarded: tuple[Flask, Seeded], proof: Any) -> None:
    app, seeded = guarded
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    statuses = []
    for i in range(12):
        response = client.post(
            "/login", data={"csrf_token": token, "email": seeded.email, "password": f"guess {i}"}
        )
        statuses.append(response.status_code)
    right = client.post("/login", data={"csrf_token": token, "email": seeded.email, "password": PASSWORD})
    retry_after = int(response.headers.get("Retry-After", "0"))
    proof.record(
        "password guessing on /login, in-memory storage",
        tried="12 wrong passwords, then the right one, from one client (limit 10 per minute)",
        expected="400 × 10, 429 × 2 with Retry-After, then still 429",
        got=f"400 × {statuses.count(400)}, 429 × {statuses.count(429)}"
        + (" with Retry-After" if retry_after > 0 else " without Retry-After")
        + f", then still {right.status_code}",
        ok=statuses == [400] * 10 + [429] * 2 and retry_after > 0 and right.status_code == 429,
    )


# -- across processes ---------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> str:
    """A Redis to share limits through, or skip (fail when ONCECAL_TEST_REDIS_URL is set)."""
    import redis

    configured = os.environ.get("ONCECAL_TEST_REDIS_URL")
    url = configured or DEFAULT_REDIS_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        if configured:
            pytest.fail(f"ONCECAL_TEST_REDIS_URL is set but Redis is unreachable: {error}")
        pytest.skip(f"Redis not reachable at {url}: {error}")
    return url


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A prefix for this test's Redis keys; its keys (and only they) are deleted afterwards."""
    import redis

    prefix = f"oncecal-proof-{secrets.token_hex(6)}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    mine = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    if mine:
        client.delete(*mine)


ACCESS_LOG = "--access-logfile - --access-logformat '%(p)s %(s)s %(U)s'"
LOG_LINE = re.compile(r"<(\d+)> (\d{3}) (\S+)")


def _served_by(log: str, path_prefix: str) -> dict[int, Counter[int]]:
    """Worker pid → statuses, from gunicorn's access log, for paths under ``path_prefix``."""
    workers: dict[int, Counter[int]] = {}
    for pid, status, path in LOG_LINE.findall(log):
        if path.startswith(path_prefix):
            workers.setdefault(int(pid), Counter())[int(status)] += 1
    return workers


@contextmanager
def two_servers(env: dict[str, str], log_dir: Path) -> Iterator[tuple[Server, Server]]:
    """Two gunicorn servers of 2 workers each on one database, logging each request.

    Sent to in turns: which worker of one server accepts a request is up to
    the kernel, but every other request is sure to reach another process.
    """
    env = {**env, "GUNICORN_CMD_ARGS": ACCESS_LOG}
    with running_server(env, log_dir, workers=2) as first, running_server(env, log_dir, workers=2) as second:
        yield first, second


def _guess_tokens(urls: list[str], count: int) -> list[requests.Response]:
    """Guess ``count`` tokens, sent to the servers in turn."""

    def one(i: int) -> requests.Response:
        return requests.get(f"{urls[i % len(urls)]}/l/{secrets.token_urlsafe(32)}", timeout=30)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def _guess_passwords(urls: list[str], email: str, count: int) -> list[requests.Response]:
    """Try ``count`` wrong passwords, each attempt (form and post) on the next server in turn."""

    def one(i: int) -> requests.Response:
        url = urls[i % len(urls)]
        session = requests.Session()
        token = csrf_of(session.get(f"{url}/login", timeout=30).text)
        return session.post(
            f"{url}/login",
            data={"csrf_token": token, "email": email, "password": f"guess {i}"},
            timeout=30,
            allow_redirects=False,
        )

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_limits_hold_across_gunicorn_workers_with_redis(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, redis_url: str, key_prefix: str, proof: Any
) -> None:
    url = database_url(request, tmp_path, backend)
    with fresh_app(url) as app:
        seeded = seed_owner(app, "first", links_count=2)
    limit = 12
    env = server_env(
        url,
        TEST_SECRET,
        RATELIMIT_STORAGE_URI=redis_url,
        RATELIMIT_KEY_PREFIX=key_prefix,
        TOKEN_FAILURE_LIMIT=f"{limit} per 10 minutes",
    )
    with two_servers(env, tmp_path) as (first, second):
        urls = [first.url, second.url]
        guesses = _guess_tokens(urls, 4 * limit)
        valid = requests.get(f"{first.url}/l/{seeded.tokens[1]}", timeout=30)
        logins = _guess_passwords(urls, seeded.email, 16)
        time.sleep(0.3)  # let the access log reach the file
        logs = first.log(200_000) + second.log(200_000)
        token_workers = _served_by(logs, "/l/")
        login_workers = _served_by(logs, "/login")
    statuses = Counter(r.status_code for r in guesses)
    retry = [int(r.headers.get("Retry-After", "0")) for r in guesses if r.status_code == 429]
    workers_404 = sum(1 for c in token_workers.values() if c[404])
    proof.record(
        "token guessing across 2 gunicorn servers × 2 workers, Redis storage",
        tried=f"{len(guesses)} unknown tokens from 8 threads, limit {limit} per 10 minutes; "
        f"{len(token_workers)} workers answered, {workers_404} of them 404s",
        expected=f"404 × {limit}, 429 × {3 * limit} with Retry-After",
        got=f"404 × {statuses[404]}, 429 × {statuses[429]}"
        + (" with Retry-After" if retry and min(retry) > 0 else " without Retry-After"),
        ok=statuses == Counter({404: limit, 429: 3 * limit}) and min(retry) > 0 and len(token_workers) >= 2,
    )
    proof.record(
        "valid link after the guessing, Redis storage",
        tried="the same client opens a real link",
        expected=200,
        got=valid.status_code,
    )
    login_statuses = Counter(r.status_code for r in logins)
    proof.record(
        "password guessing across 2 gunicorn servers × 2 workers, Redis storage",
        tried=f"16 wrong passwords from 4 threads (limit 10 per minute); {len(login_workers)} workers answered",
        expected="400 × 10, 429 × 6",
        got=" ".join(f"{code} × {n}" for code, n in sorted(login_statuses.items())),
        ok=login_statuses == Counter({400: 10, 429: 6}) and len(login_workers) >= 2,
    )


@pytest.mark.slow
def test_in_memory_limits_are_per_worker(request: pytest.FixtureRequest, tmp_path: Path, proof: Any) -> None:
    """Why Redis: with memory:// each process counts alone, so N processes let through up to N × the limit."""
    url = database_url(request, tmp_path, "sqlite")
    with fresh_app(url):
        pass
    limit = 12
    env = server_env(url, TEST_SECRET, TOKEN_FAILURE_LIMIT=f"{limit} per 10 minutes")
    with two_servers(env, tmp_path) as (first, second):
        guesses = _guess_tokens([first.url, second.url], 4 * limit)
        time.sleep(0.3)
        workers = _served_by(first.log(200_000) + second.log(200_000), "/l/")
    passed = sum(r.status_code == 404 for r in guesses)
    # Each worker lets through min(its requests, limit): the sum is exact from the access log.
    expected = sum(min(sum(c.values()), limit) for c in workers.values())
    proof.record(
        "token guessing across 2 gunicorn servers × 2 workers, in-memory storage",
        tried=f"{len(guesses)} unknown tokens from 8 threads, limit {limit}; "
        f"requests per worker {sorted(sum(c.values()) for c in workers.values())}",
        expected=f"404 × Σ min(requests, {limit}) = {expected} (more than {limit}: why Redis)",
        got=f"404 × {passed}",
        ok=passed == expected and passed > limit,
    )


# -- same answer, same time ---------------------------------------------------


@pytest.fixture(params=BACKENDS)
def unthrottled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Flask, Seeded]]:
    url = database_url(request, tmp_path, request.param)
    with fresh_app(url, TOKEN_FAILURE_LIMIT="1000000 per minute") as app:
        yield app, seed_owner(app, "first")


def test_unknown_tokens_answer_the_same_in_the_same_time(
    unthrottled: tuple[Flask, Seeded], proof: Any
) -> None:
    app, seeded = unthrottled
    # Tokens that once opened links, whose links are deleted since.
    gone = seed_owner(app, "gone", links_count=40)
    with app.app_context():
        for model in (Booking, OneTimeLink):
            db.session.execute(sa.delete(model).where(model.calendar_id == gone.calendar_id))
        db.session.commit()
    real = seeded.tokens[1]
    rounds = proof.scale(150, 1000)
    kinds = {
        "unknown (random, token-shaped)": lambda i: secrets.token_urlsafe(32),
        "malformed (wrong length or characters)": lambda i: secrets.token_urlsafe(8 + i % 40).replace(
            "-", "."
        ),
        "near miss of a real token": lambda i: (
            real[: i % 43] + ("A" if real[i % 43] != "A" else "B") + real[i % 43 + 1 :]
        ),
        "a deleted link's real token": lambda i: gone.tokens[i % len(gone.tokens)],
    }
    client = app.test_client()
    for _ in range(30):  # warm up
        client.get(f"/l/{secrets.token_urlsafe(32)}")
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    bodies: dict[str, set[bytes]] = {kind: set() for kind in kinds}
    statuses: Counter[int] = Counter()
    for i in range(rounds):
        for kind, make in kinds.items():  # interleaved, so drift hits every kind alike
            path = f"/l/{make(i)}"
            started = time.perf_counter()
            response = client.get(path)
            timings[kind].append(time.perf_counter() - started)
            bodies[kind].add(response.data)
            statuses[response.status_code] += 1
    medians = {kind: statistics.median(values) * 1000 for kind, values in timings.items()}
    spread = max(medians.values()) - min(medians.values())
    # Below a millisecond is well under any network's jitter; the machine is shared.
    tolerance = max(1.0, 0.3 * min(medians.values()))
    proof.record(
        "unknown-token answers: bodies",
        tried=f"{rounds} GETs each of {len(kinds)} kinds: " + ", ".join(kinds),
        expected="404 always, 1 distinct body",
        got=f"{' '.join(f'{c} × {n}' for c, n in statuses.items())}, "
        f"{len(set().union(*bodies.values()))} distinct body",
        ok=set(statuses) == {404} and len(set().union(*bodies.values())) == 1,
    )
    proof.record(
        "unknown-token answers: median time",
        tried=", ".join(f"{kind} {ms:.2f} ms" for kind, ms in medians.items()),
        expected=f"medians within {tolerance:.2f} ms (30% or 1 ms)",
        got=f"spread {spread:.2f} ms",
        ok=spread <= tolerance,
    )


@pytest.mark.slow
def test_an_unreachable_redis_falls_back_to_counting_in_each_process(
    request: pytest.FixtureRequest, tmp_path: Path, proof: Any
) -> None:
    """Redis down: no 500; each process counts on its own (memory) until it is back."""
    url = database_url(request, tmp_path, "sqlite")
    with fresh_app(url) as app:
        seeded = seed_owner(app, "first", links_count=2)
    nowhere = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    env = server_env(url, TEST_SECRET, RATELIMIT_STORAGE_URI=nowhere, TOKEN_FAILURE_LIMIT="5 per minute")
    with running_server(env, tmp_path, workers=1) as server:
        guesses = [requests.get(f"{server.url}/l/{secrets.token_urlsafe(32)}", timeout=30) for _ in range(7)]
        valid = requests.get(f"{server.url}/l/{seeded.tokens[1]}", timeout=30)  # [0] is booked
        logins = _guess_passwords([server.url], seeded.email, 12)
        log = server.log(200_000)
    proof.record(
        "token guessing with Redis unreachable",
        tried=f"7 unknown tokens, then a valid link, one gunicorn worker, storage {nowhere}",
        expected="404 × 5, 429 × 2, then 200",
        got=", ".join(f"{code} × {n}" for code, n in Counter(r.status_code for r in guesses).items())
        + f", then {valid.status_code}",
        ok=[r.status_code for r in guesses] == [404] * 5 + [429] * 2 and valid.status_code == 200,
    )
    login_statuses = Counter(r.status_code for r in logins)
    proof.record(
        "password guessing with Redis unreachable",
        tried="12 wrong passwords (limit 10 per minute), one gunicorn worker",
        expected="400 × 10, 429 × 2",
        got=", ".join(f"{code} × {n}" for code, n in sorted(login_statuses.items())),
    )
    proof.record(
        "server errors with Redis unreachable",
        tried="the 20 requests above; the server log",
        expected="0 × 5xx, the fallback logged",
        got=f"{sum(r.status_code >= 500 for r in [*guesses, valid, *logins])} × 5xx, "
        + ("the fallback logged" if "counting in this process" in log else "no fallback in the log"),
    )
