"""The database goes away under load: a PostgreSQL restart, a SQLite file locked by another writer.

PostgreSQL: a throwaway cluster of the test's own (initdb in a temp dir, run
as the postgres OS user, on a free port: never the machine's shared server)
is restarted while clients book and create links through gunicorn with four
workers. SQLite: the test process holds ``BEGIN IMMEDIATE`` on the database
file for longer than the app's busy timeout while bookings are submitted.
Either way an affected request gets a 503 that says so (HTML page or
problem+json, with Retry-After), nothing is half-written, and the requests
after the fault succeed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import requests

from tests.proof.harness import (
    HTTP_TIMEOUT,
    codes,
    is_clear_503,
    make_site,
    release_at_once,
    throwaway_cluster,
)
from tests.proof.report import Proof
from tests.support.pages import BookingPage

pytestmark = pytest.mark.slow

BOOKERS = 6


@dataclass(frozen=True)
class Answer:
    what: str  # "GET", "POST" or "API"
    status: int | str  # a status code, or "no answer"
    clear: bool  # a 503 that says so, with Retry-After
    link_id: int | None
    sent: float  # time.monotonic() when sent
    done: float  # and when answered


def answer(what: str, method: str, url: str, link_id: int | None = None, **kw: object) -> tuple[Answer, str]:
    """Send one request; return what came back and the body."""
    sent = time.monotonic()
    try:
        response = requests.request(method, url, timeout=HTTP_TIMEOUT, allow_redirects=False, **kw)  # type: ignore[arg-type]  # kw: requests keyword arguments
    except requests.RequestException:
        return Answer(what, "no answer", False, link_id, sent, time.monotonic()), ""
    return Answer(
        what, response.status_code, is_clear_503(response), link_id, sent, time.monotonic()
    ), response.text


def test_postgresql_restarted_mid_burst(proof: Proof, tmp_path: Path) -> None:
    restarts = proof.scale(1, 3)
    scenario = "PostgreSQL restarted mid-burst"
    tried = (
        f"{BOOKERS} clients booking fresh links and 1 creating links through the API, against gunicorn "
        f"(4 workers); {restarts} × pg_ctl stop -m fast, 1.5 s down, start"
    )
    with throwaway_cluster() as cluster, make_site(cluster.create_database(), tmp_path) as site:
        calendar_id = site.new_calendar()
        slug = site.calendar_slug(calendar_id)
        issued = site.issue_links(calendar_id, proof.scale(400, 1200))
        slots = site.open_slots(calendar_id)
        answers: list[Answer] = []
        lock = threading.Lock()
        stop = threading.Event()
        next_link = iter(range(len(issued) - 1))

        def booker() -> None:
            while not stop.is_set():
                with lock:
                    i = next(next_link, None)
                if i is None:
                    return
                link_id, token = issued[i]
                page, html = answer("GET", "GET", f"{site.url}/l/{token}")
                got = [page]
                if page.status == 200:
                    form = BookingPage.parse(html).form(slots[i], email=f"invitee{i}@example.com")
                    got.append(answer("POST", "POST", f"{site.url}/l/{token}", link_id, data=form)[0])
                with lock:
                    answers.extend(got)

        def api_client() -> None:
            while not stop.is_set():
                got, _body = answer(
                    "API",
                    "POST",
                    f"{site.url}/api/v1/one-time-links",
                    json={"calendar": slug, "label": "from the CRM"},
                    headers={"Authorization": f"Bearer {site.api_key}"},
                )
                with lock:
                    answers.append(got)

        with ThreadPoolExecutor(max_workers=BOOKERS + 1) as pool:
            futures = [pool.submit(booker) for _ in range(BOOKERS)] + [pool.submit(api_client)]
            time.sleep(1.0)
            first_stop = time.monotonic()
            for _ in range(restarts):
                cluster.stop("fast")
                time.sleep(1.5)
                cluster.start()
                restarted = time.monotonic()
                time.sleep(1.5)
            stop.set()
            for future in futures:
                future.result()

        # After the restart: one more booking and one more link, on a server that recovered by itself.
        _last_id, last_token = issued[-1]
        form = site.load_form(last_token).form(slots[len(issued) - 1])
        after = (
            site.post_form(last_token, form).status_code,
            site.api_create_link({"calendar": slug}).status_code,
        )
        ledger = site.ledger(link_id for link_id, _ in issued)
        uses = site.link_uses(a.link_id for a in answers if a.what == "POST" and a.status == 503)

    unavailable = [a for a in answers if a.status == 503]
    other_5xx = [a for a in answers if isinstance(a.status, int) and a.status >= 500 and a.status != 503]
    seen = codes(a.status for a in answers)
    proof.record(
        f"{scenario}: 503 answers (> 0: the restart was felt)",
        tried=f"{tried}; answers: {seen}",
        expected="> 0",
        got=len(unavailable),
        backend="PostgreSQL",
        ok=len(unavailable) > 0,
    )
    ok_codes = (200, 201, 303)
    before = [a for a in answers if a.done < first_stop]
    late = [a for a in answers if a.sent > restarted]
    proof.record(
        f"{scenario}: requests sent after the (last) restart that failed",
        tried=f"{len(late)} sent in the 1.5 s after pg_ctl start returned",
        expected=0,
        got=sum(a.status not in ok_codes for a in late),
        backend="PostgreSQL",
    )
    proof.record(
        f"{scenario}: failed answers before the first stop",
        tried=f"{len(before)} answered before pg_ctl stop",
        expected=0,
        got=sum(a.status not in ok_codes for a in before),
        backend="PostgreSQL",
    )
    proof.record(
        f"{scenario}: 500 or other 5xx answers",
        tried=tried,
        expected=0,
        got=len(other_5xx),
        backend="PostgreSQL",
    )
    proof.record(
        f"{scenario}: requests without an answer",
        tried=tried,
        expected=0,
        got=sum(a.status == "no answer" for a in answers),
        backend="PostgreSQL",
    )
    proof.record(
        f"{scenario}: 503s that say so (HTML page or problem+json, Retry-After)",
        tried=f"{sum(a.what == 'API' for a in unavailable)} API, {sum(a.what != 'API' for a in unavailable)} HTML",
        expected=len(unavailable),
        got=sum(a.clear for a in unavailable),
        backend="PostgreSQL",
    )
    proof.record(
        f"{scenario}: booking POSTs answered 503 whose link was used anyway",
        tried=f"{len(uses)} POSTs answered 503",
        expected=0,
        got=sum(1 for n in uses.values() if n),
        backend="PostgreSQL",
    )
    proof.record(
        f"{scenario}: links used without a booking, or booked without a use",
        tried=f"{ledger.links} links, {ledger.bookings} bookings, {ledger.uses} uses",
        expected=(0, 0),
        got=(ledger.used_without_booking, ledger.booked_without_use),
        backend="PostgreSQL",
    )
    proof.record(
        f"{scenario}: after the restart, a booking and an API link",
        tried="POST /l/<token>, POST /api/v1/one-time-links",
        expected=(303, 201),
        got=after,
        backend="PostgreSQL",
    )


def test_sqlite_locked_longer_than_the_busy_timeout(proof: Proof, tmp_path: Path) -> None:
    k = proof.scale(4, 20)
    a = proof.scale(2, 5)
    scenario = "SQLite locked by another writer past the busy timeout"
    path = tmp_path / "locked.sqlite3"
    with make_site(f"sqlite:///{path}", tmp_path, SQLITE_BUSY_TIMEOUT_MS="500") as site:
        calendar_id = site.new_calendar()
        slug = site.calendar_slug(calendar_id)
        issued = site.issue_links(calendar_id, k)
        pages = [site.load_form(token) for _id, token in issued]
        slots = site.open_slots(calendar_id)
        posts: list[Callable[[], requests.Response]] = [
            partial(site.post_form, token, page.form(slot))
            for (_id, token), page, slot in zip(issued, pages, slots, strict=False)
        ]
        posts += [lambda: site.api_create_link({"calendar": slug}) for _ in range(a)]

        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            held_from = time.monotonic()
            during = release_at_once(posts)
            held = time.monotonic() - held_from
            locked_ledger = site.ledger(link_id for link_id, _ in issued)
            links_during = len(site.links_of(calendar_id))
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        after = release_at_once(posts)
        ledger = site.ledger(link_id for link_id, _ in issued)

    tried = f"BEGIN IMMEDIATE held {held:.1f} s by the test process, busy timeout 500 ms; {k} booking POSTs and {a} API creates at once; gunicorn, 4 workers"
    proof.record(
        f"{scenario}: answers while locked",
        tried=tried,
        expected=codes([503] * (k + a)),
        got=codes(during),
        backend="SQLite",
    )
    proof.record(
        f"{scenario}: 503s that say so (HTML page or problem+json, Retry-After)",
        tried=tried,
        expected=k + a,
        got=sum(is_clear_503(r) for r in during),
        backend="SQLite",
    )
    proof.record(
        f"{scenario}: bookings, link uses and new links written while locked",
        tried=tried,
        expected=(0, 0, k),
        got=(locked_ledger.bookings, locked_ledger.uses, links_during),
        backend="SQLite",
    )
    proof.record(
        f"{scenario}: after release, the same forms and API calls again",
        tried=f"{k} POSTs of the same forms, {a} API creates",
        expected=codes([303] * k + [201] * a),
        got=codes(after),
        backend="SQLite",
    )
    proof.record(
        f"{scenario}: links used without a booking, or booked without a use",
        tried=f"{ledger.links} links, {ledger.bookings} bookings, {ledger.uses} uses",
        expected=(0, 0),
        got=(ledger.used_without_booking, ledger.booked_without_use),
        backend="SQLite",
    )
