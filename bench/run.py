"""OnceCal benchmark: `make bench` (or `.venv/bin/python bench/run.py`).

One run on one machine measures, on SQLite and on PostgreSQL:

- Server: throughput and latency (p50, p99) of gunicorn with one sync worker
  per core, loaded by wrk over loopback for a few seconds per endpoint:
  /healthz (the floor), GET /l/<token> (look-up, slots, render), POST
  /l/<token> (use the link, book, redirect; every POST has its own fresh link
  and page load, prepared before the timed part and walked by
  bench/wrk/post.lua) and GET /widget/embed.js, each as a ratio to /healthz.
  Every answer must have the expected status (200, or 303 for the POSTs);
  any other answer or socket error fails the run.
- Scale: GET /l/<token> p50 latency (one connection) with 10^2 and with 10^6
  links in the database; the pure slot computation with 0 and with 10,000
  bookings in its window.
- Weight: embed.js gzipped as served; what the embedded booking page
  transfers on its first load in Chromium (compressed, headers included), in
  how many requests, and how many go to a host other than OnceCal's.
- Browser: time from the host page's navigation start to the iframe's
  `ready` message, Chromium with a cold cache, median of 10.
- Layout shift: Lighthouse (npm `lighthouse`, pinned in bench/lighthouse,
  run with Debian's Chromium) on the demo host page with the inline widget,
  desktop and mobile presets: the cumulative layout shift the widget costs
  the host page (budget: 0.05; Core Web Vitals call 0.1 good).

Ratios matter more than absolute times: both sides of a ratio run in the
same process tree, on the same machine, seconds apart. The table is printed
and written to bench/results.md; the exit status is 1 when any request
failed or any budget FAILs. Options: `--help`. `--quick` is a smoke run
(short runs, 10^4 links), not a measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from oncecal.db import write_transaction  # noqa: E402
from oncecal.extensions import db  # noqa: E402
from oncecal.models import Calendar, OneTimeLink, Owner, utcnow  # noqa: E402
from oncecal.runtime import runtime  # noqa: E402
from oncecal.services import bookings, links  # noqa: E402
from oncecal.services.slots import Availability, available_slots  # noqa: E402
from tests.browser.live import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.conftest import TEST_SECRET, create_pg_database, drop_pg_database, make_test_app  # noqa: E402
from tests.pages import BookingPage  # noqa: E402
from tests.servers import Server, migrate, running_server, server_env  # noqa: E402

WRK_DIR = Path(__file__).resolve().parent / "wrk"
LIGHTHOUSE = Path(__file__).resolve().parent / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
RESULTS = Path(__file__).resolve().parent / "results.md"
QUICK_RESULTS = Path(__file__).resolve().parent / "out" / "quick.md"
BROWSER_ENCODINGS = "gzip, deflate, br"
HTTP_TIMEOUT = 30
PG_ADMIN_URL = os.environ.get(
    "ONCECAL_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

# Budgets (see the issue "Benchmark: build make bench").
GET_VS_HEALTHZ = 0.50
POST_VS_HEALTHZ = 0.25
LINKS_LATENCY_RATIO = 1.3
SLOTS_RATIO = 3.0
EMBED_JS_GZIP_BYTES = 2048
FIRST_LOAD_BYTES = 30_000
FIRST_LOAD_REQUESTS = 4
THIRD_PARTY_REQUESTS = 0
LAYOUT_SHIFT = 0.05

# The calendar every page is measured on: OnceCal's defaults (weekdays
# 09:00–17:00, 30 minutes, 4 hours' notice, 60 days ahead).
CALENDAR_RULES: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "duration_minutes": 30,
    "weekly_hours": {str(d): [["09:00", "17:00"]] for d in range(5)},
    "min_notice_minutes": 240,
    "days_ahead": 60,
}


# ----------------------------------------------------------------- results


@dataclass
class Load:
    """One wrk run."""

    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int  # socket errors plus answers other than the expected status
    exhausted: bool = False
    detail: str = ""


@dataclass
class Check:
    """One budget: a figure, its limit and the verdict."""

    section: str
    measure: str
    backend: str
    value: str
    budget: str
    passed: bool | None  # None: reported, no budget


@dataclass
class BackendResult:
    name: str
    loads: dict[str, Load] = field(default_factory=dict)
    latency_small_ms: float = 0.0
    latency_large_ms: float = 0.0
    links_small: int = 0
    links_large: int = 0
    embed_gzip: int = 0
    embed_br: int = 0
    first_load_bytes: int = 0
    first_load_requests: int = 0
    first_load_parts: list[tuple[str, int]] = field(default_factory=list)
    third_party: int = 0
    ready_ms: list[float] = field(default_factory=list)
    host_dcl_ms: list[float] = field(default_factory=list)
    layout_shift: dict[str, float] = field(default_factory=dict)  # Lighthouse preset → CLS
    lookup_plan: str = ""
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------- wrk


def run_wrk(
    url: str,
    *,
    name: str,
    duration: float,
    connections: int,
    script: str = "report.lua",
    script_args: tuple[str, ...] = ("200",),
    threads: int = 1,
) -> Load:
    """Load ``url`` with wrk for ``duration`` seconds and return its figures."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-H",
        f"Accept-Encoding: {BROWSER_ENCODINGS}",
        "-s",
        str(WRK_DIR / script),
        url,
        *script_args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = data["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    failures = socket_errors + max(errors["status"], data["unexpected"])
    return Load(
        name=name,
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        failures=failures,
        exhausted=bool(data["exhausted"]),
        detail=(
            f"{data['requests']} requests, {data['unexpected']} unexpected status, "
            f"{errors['status']} non-2xx/3xx, socket errors {errors}"
        ),
    )


# ------------------------------------------------------------- the database


@contextmanager
def database(backend: str, workdir: Path, pg_admin_url: str, name: str) -> Iterator[str]:
    """A fresh, empty database of this run's own; dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'{name}.sqlite3'}"
        return
    url = create_pg_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_pg_database(pg_admin_url, url)


def seed_owner_and_calendars(app: Any, count: int, prefix: str) -> list[int]:
    """Add ``count`` calendars with the measured rules; return their ids."""
    with app.app_context():
        owner = db.session.scalar(sa.select(Owner).where(Owner.email == "owner@example.com"))
        if owner is None:
            owner = Owner(
                email="owner@example.com",
                name="Olivia Owner",
                phone="+1 555 0100",
                password_hash="not-a-real-hash",
            )
            db.session.add(owner)
        calendars = [
            Calendar(owner=owner, name="Consultation", slug=f"{prefix}-{i}", **CALENDAR_RULES)
            for i in range(count)
        ]
        db.session.add_all(calendars)
        db.session.commit()
        return [c.id for c in calendars]


def issue_links(app: Any, calendar_ids: list[int], count: int) -> list[tuple[int, str]]:
    """Issue ``count`` single-use links round-robin over the calendars; return (calendar id, token)."""
    with app.app_context():
        keys = runtime().link_keys
        now = utcnow()
        calendars = [db.session.get_one(Calendar, cid) for cid in calendar_ids]
        issued = []
        with write_transaction():  # one transaction for all: each link joins it
            for i in range(count):
                calendar = calendars[i % len(calendars)]
                _link, token = links.issue_link(calendar, keys, now=now, source="bench")
                issued.append((calendar.id, token))
        return issued


def count_links(app: Any) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(OneTimeLink)) or 0


def lookup_plan(backend: str, url: str) -> str:
    """Return how the database finds a link by its token hash (it must use an index)."""
    if backend == "sqlite":
        conn = sqlite3.connect(sa.make_url(url).database)
        try:
            rows = conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM one_time_links WHERE token_hash = ?", ("0" * 64,)
            ).fetchall()
        finally:
            conn.close()
        return "; ".join(str(row[-1]) for row in rows)
    libpq = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq) as conn:
        rows = conn.execute(
            "EXPLAIN SELECT * FROM one_time_links WHERE token_hash = %s", ("0" * 64,)
        ).fetchall()
    return str(rows[0][0]).split("  (cost")[0].strip()


def bulk_links(backend: str, url: str, calendar_id: int, count: int) -> float:
    """Add ``count`` links with valid random columns, fast; return the seconds it took."""
    started = time.perf_counter()
    if count <= 0:
        return 0.0
    if backend == "sqlite":
        path = sa.make_url(url).database
        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

        def rows() -> Iterator[tuple[Any, ...]]:
            for _ in range(count):
                h = os.urandom(54).hex()  # nonce 32, key id 12, token hash 64 hex digits
                yield (calendar_id, h[:32], h[32:44], h[44:108], 0, 1, "bench", created)

        conn = sqlite3.connect(path, isolation_level=None, timeout=60)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO one_time_links "
                "(calendar_id, nonce, key_id, token_hash, uses, max_uses, source, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows(),
            )
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    else:
        libpq = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO one_time_links "
                "(calendar_id, nonce, key_id, token_hash, uses, max_uses, source, created_at) "
                "SELECT %(calendar)s, md5(random()::text || g::text), "
                "substr(md5(random()::text || g::text), 1, 12), "
                "encode(sha256(convert_to(random()::text || '/' || g::text, 'UTF8')), 'hex'), "
                "0, 1, 'bench', now() FROM generate_series(1, %(count)s) AS g",
                {"calendar": calendar_id, "count": count},
            )
            conn.execute("VACUUM ANALYZE one_time_links")
    return time.perf_counter() - started


# ------------------------------------------------------------ the POST list


def prepare_posts(app: Any, server: Server, count: int, workdir: Path, workers: int) -> Path:
    """Issue ``count`` links, load each one's page once, and write the list of POSTs.

    Links go round-robin over enough calendars (same rules as the measured
    one) that every POST books its own free slot: none is refused.
    """
    with app.app_context():
        probe = db.session.get_one(Calendar, seed_owner_and_calendars(app, 1, f"post-probe-{count}")[0])
        slots = bookings.open_slots(probe, utcnow())
    slots = slots[8:]  # leave the soonest few: they must not pass while the run goes on
    per_calendar = len(slots)
    calendar_ids = seed_owner_and_calendars(
        app, math.ceil(count / per_calendar), f"post-{count}-{time.time_ns()}"
    )
    issued = issue_links(app, calendar_ids, count)

    def load(item: tuple[int, tuple[int, str]]) -> str:
        index, (_calendar_id, token) = item
        slot = slots[index // len(calendar_ids)]
        response = requests.get(
            f"{server.url}/l/{token}", headers={"Accept-Encoding": BROWSER_ENCODINGS}, timeout=HTTP_TIMEOUT
        )
        if response.status_code != 200:
            raise RuntimeError(f"page load for the POST list answered {response.status_code}")
        page = BookingPage.parse(response.text)
        slot_value = slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"/l/{token}\t{urlencode(page.form(slot=slot_value))}"

    with ThreadPoolExecutor(max_workers=max(2, workers * 2)) as pool:
        lines = list(pool.map(load, enumerate(issued)))
    path = workdir / f"posts-{count}.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------- browser


READY_PROBE = """
window.addEventListener("message", function (e) {
  if (window.__oncecalReady === undefined && e.data && e.data.source === "oncecal" && e.data.type === "ready") {
    window.__oncecalReady = performance.now();
  }
});
"""


def browser_figures(server: Server, token: str, runs: int, result: BackendResult) -> None:
    """Weigh the embedded page's first load and time host start → `ready`, in Chromium."""
    from playwright.sync_api import sync_playwright

    host_url = f"{server.url.replace('://127.0.0.1', '://localhost', 1)}/demo/host?inline={token}"
    oncecal_origin = server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for run in range(runs + 1):  # run 0 weighs the page; then `runs` timed loads
                context = browser.new_context()  # a cold cache each time
                context.add_init_script(READY_PROBE)
                finished: list[Any] = []
                failed: list[Any] = []
                # Playwright tags its handlers, which a bound builtin refuses.
                context.on("requestfinished", partial(list.append, finished))
                context.on("requestfailed", partial(list.append, failed))
                page = context.new_page()
                response = page.goto(host_url)
                if response is None or response.status != 200:
                    raise RuntimeError(f"host page answered {response and response.status}")
                page.wait_for_function("window.__oncecalReady !== undefined", timeout=30_000)
                ready = page.evaluate("window.__oncecalReady")
                host_dcl = page.evaluate(
                    "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
                )
                if run == 0:
                    page.wait_for_load_state("networkidle")
                    framed = [r for r in finished if r.frame.parent_frame is not None]
                    framed_failed = [r for r in failed if r.frame.parent_frame is not None]
                    if framed_failed:
                        result.failures.append(
                            f"embedded page: {len(framed_failed)} request(s) failed: "
                            + ", ".join(r.url for r in framed_failed)
                        )
                    parts = []
                    for r in framed:
                        sizes = r.sizes()
                        parts.append((r.url, sizes["responseBodySize"] + sizes["responseHeadersSize"]))
                        status = r.response().status if r.response() else 0
                        if not 200 <= status < 400:
                            result.failures.append(f"embedded page: {r.url} answered {status}")
                    result.first_load_parts = [
                        (u.removeprefix(oncecal_origin).split("?")[0].replace(token, "<token>"), b)
                        for u, b in parts
                    ]
                    result.first_load_bytes = sum(b for _u, b in parts)
                    result.first_load_requests = len(parts) + len(framed_failed)
                    result.third_party = sum(
                        1 for r in [*framed, *framed_failed] if not r.url.startswith(oncecal_origin + "/")
                    )
                else:
                    result.ready_ms.append(float(ready))
                    result.host_dcl_ms.append(float(host_dcl))
                context.close()
        finally:
            browser.close()


def lighthouse_figures(server: Server, token: str, workdir: Path, result: BackendResult) -> None:
    """Run Lighthouse on the demo host page, desktop and mobile; record its cumulative layout shift."""
    host_url = f"{server.url.replace('://127.0.0.1', '://localhost', 1)}/demo/host?inline={token}"
    flags = " ".join(["--headless=new", *CHROMIUM_ARGS])
    for preset in ("desktop", "mobile"):
        report_path = workdir / f"lighthouse-{preset}.json"
        command = [
            str(LIGHTHOUSE),
            host_url,
            "--only-categories=performance",
            "--output=json",
            f"--output-path={report_path}",
            "--quiet",
            f"--chrome-flags={flags}",
        ]
        if preset == "desktop":  # mobile is Lighthouse's default
            command.append("--preset=desktop")
        run = subprocess.run(
            command,
            env={**os.environ, "CHROME_PATH": CHROMIUM},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        audits = json.loads(report_path.read_text())["audits"] if report_path.exists() else {}
        shift = audits.get("cumulative-layout-shift", {}).get("numericValue")
        if run.returncode != 0 or shift is None:
            result.failures.append(f"Lighthouse {preset}: exit {run.returncode}, {run.stderr.strip()[-300:]}")
            continue
        result.layout_shift[preset] = float(shift)


# ------------------------------------------------------------- one backend


def interleaved(
    runs: dict[str, tuple[str, str, Callable[[int], tuple[str, ...]] | None]],
    *,
    rounds: int,
    seconds: float,
    connections: int,
) -> dict[str, Load]:
    """Run each wrk run ``rounds`` times for ``seconds``, round-robin, and sum them up.

    Taking turns second by second, the runs that a ratio compares see the
    same machine: whatever else it does then weighs on both sides alike.
    ``runs`` maps a key to (url, label, script args per round or None for a GET).
    Throughput is all requests over all time; p50 and p99 are the medians of
    the rounds' own.
    """
    parts: dict[str, list[Load]] = {key: [] for key in runs}
    for index in range(rounds):
        for key, (url, label, post_args) in runs.items():
            if post_args is None:
                load = run_wrk(url, name=label, duration=seconds, connections=connections)
            else:
                load = run_wrk(
                    url,
                    name=label,
                    duration=seconds,
                    connections=connections,
                    script="post.lua",
                    script_args=post_args(index),
                )
            parts[key].append(load)
    totals = {}
    for key, loads in parts.items():
        duration = sum(x.requests / x.rps for x in loads if x.rps)
        totals[key] = Load(
            name=loads[0].name,
            rps=sum(x.requests for x in loads) / duration if duration else 0.0,
            p50_ms=statistics.median(x.p50_ms for x in loads),
            p99_ms=statistics.median(x.p99_ms for x in loads),
            requests=sum(x.requests for x in loads),
            failures=sum(x.failures for x in loads),
            exhausted=any(x.exhausted for x in loads),
            detail="; ".join(x.detail for x in loads if x.failures),
        )
    return totals


def seed_measured(url: str) -> tuple[Any, int, str]:
    """Migrated database → one owner, the measured calendar and 100 links; return (app, calendar id, token)."""
    migrate(server_env(url, TEST_SECRET))
    app = make_test_app(url)
    calendar_id = seed_owner_and_calendars(app, 1, "consultation")[0]
    token = issue_links(app, [calendar_id], 100)[0][1]
    return app, calendar_id, token


def bench_backend(backend: str, args: argparse.Namespace, workdir: Path) -> BackendResult:
    """Measure one backend: a small database (10^2 links) and a large one (10^6), both served."""
    result = BackendResult(backend)
    workers = args.workers
    rounds = max(1, round(args.duration))
    with (
        database(backend, workdir, args.pg_admin_url, "small") as url,
        database(backend, workdir, args.pg_admin_url, "large") as large_url,
    ):
        log(f"{backend}: migrating two fresh databases")
        app, _calendar_id, token = seed_measured(url)
        large_app, large_calendar, large_token = seed_measured(large_url)
        result.links_small = count_links(app)
        log(f"{backend}: adding {args.links - result.links_small:,} links to the large database")
        seconds = bulk_links(backend, large_url, large_calendar, args.links - count_links(large_app))
        result.links_large = count_links(large_app)
        result.notes.append(f"{backend}: {result.links_large:,} links seeded in {seconds:.1f} s")
        result.lookup_plan = lookup_plan(backend, large_url)

        log(f"{backend}: starting gunicorn with {workers} workers on each database")
        env = server_env(url, TEST_SECRET)
        with (
            running_server(env, workdir, workers=workers) as server,
            running_server(server_env(large_url, TEST_SECRET), workdir, workers=workers) as large_server,
        ):
            base = server.url
            gets = {
                "healthz": (f"{base}/healthz", "GET /healthz", None),
                "get": (f"{base}/l/{token}", "GET /l/<token>", None),
                "embed": (f"{base}/widget/embed.js", "GET /widget/embed.js", None),
            }
            log(f"{backend}: warming up")
            warm = {
                key: run_wrk(target, name=label, duration=1, connections=args.connections)
                for key, (target, label, _) in gets.items()
            }
            run_wrk(f"{large_server.url}/l/{large_token}", name="warm-up", duration=1, connections=1)

            log(f"{backend}: GET /l/<token> latency, 10^2 and 10^6 links in turns (1 connection)")
            scale = interleaved(
                {
                    "small": (gets["get"][0], "GET /l/<token>, 10^2 links", None),
                    "large": (f"{large_server.url}/l/{large_token}", "GET /l/<token>, 10^6 links", None),
                },
                rounds=max(1, round(args.latency_duration)),
                seconds=1,
                connections=1,
            )
            result.latency_small_ms = scale["small"].p50_ms
            result.latency_large_ms = scale["large"].p50_ms
            result.loads.update({f"scale-{k}": v for k, v in scale.items()})

            embed = requests.get(
                f"{base}/widget/embed.js",
                headers={"Accept-Encoding": "gzip"},
                stream=True,
                timeout=HTTP_TIMEOUT,
            )
            result.embed_gzip = len(embed.raw.read(decode_content=False))
            if embed.headers.get("Content-Encoding") != "gzip":
                result.failures.append("embed.js was not served gzipped to Accept-Encoding: gzip")
            embed_br = requests.get(
                f"{base}/widget/embed.js",
                headers={"Accept-Encoding": "br"},
                stream=True,
                timeout=HTTP_TIMEOUT,
            )
            result.embed_br = len(embed_br.raw.read(decode_content=False))

            if args.browser_runs:
                log(f"{backend}: Chromium: first load and {args.browser_runs} timed loads")
                browser_figures(server, token, args.browser_runs, result)
            if args.lighthouse and backend == args.backends.split(",")[0].strip():
                log(f"{backend}: Lighthouse on the demo host page, desktop and mobile")
                lighthouse_figures(server, token, workdir, result)

            # Enough fresh (link, page load) pairs for every POST round. POSTs
            # write: they do not outrun GETs nor 30 % of the floor (if they do,
            # a round's list runs out and everything is measured again with twice as many).
            estimate = max(warm["get"].rps, 0.3 * warm["healthz"].rps)
            per_round = math.ceil(estimate * 1.3) + 20
            for _attempt in (1, 2):
                log(f"{backend}: preparing {per_round * rounds} links and page loads for the POSTs")
                started = time.perf_counter()
                post_list = prepare_posts(app, server, per_round * rounds, workdir, workers)
                lines = post_list.read_text().splitlines()
                slices = []
                for index in range(rounds):
                    part = workdir / f"{post_list.stem}-{index}.tsv"
                    part.write_text("\n".join(lines[index::rounds]) + "\n")
                    slices.append(part)
                log(
                    f"{backend}: prepared in {time.perf_counter() - started:.1f} s; "
                    f"{rounds} rounds of 1 s each: /healthz, GET, embed.js, POST"
                )
                loads = interleaved(
                    {
                        **gets,
                        "post": (
                            f"{base}/",
                            "POST /l/<token>",
                            lambda index, slices=slices: (str(slices[index]), "1"),
                        ),
                    },
                    rounds=rounds,
                    seconds=1,
                    connections=args.connections,
                )
                if not loads["post"].exhausted:
                    break
                log(f"{backend}: the POSTs used up a round's list; again with twice as many")
                per_round *= 2
            result.loads.update(loads)
            if loads["post"].exhausted:
                result.failures.append(
                    "POST rounds used up their prepared lists twice; the rate is not valid"
                )

            for load in result.loads.values():
                if load.failures:
                    result.failures.append(f"{load.name}: {load.failures} failed requests ({load.detail})")
        for flask_app in (app, large_app):
            with flask_app.app_context():
                db.session.remove()
                db.engine.dispose()
    return result


# -------------------------------------------------------- slot computation


def slots_figures(repeats: int) -> tuple[float, float, int, int]:
    """Time available_slots with 0 and with 10,000 bookings in its window; return medians (ms)."""
    availability = Availability(
        timezone=ZoneInfo("Europe/Berlin"),
        weekly={d: ((datetime.min.time(), None),) for d in range(7)},  # open around the clock
        duration=timedelta(minutes=10),
        days_ahead=70,
    )
    now = datetime(2031, 3, 3, 6, 0, tzinfo=UTC)  # the window holds a DST change
    free = available_slots(availability, [], now)
    chosen = sorted(random.Random(42).sample(free, 10_000))
    busy = [(s, s + availability.duration) for s in chosen]

    def timed_ms(call: Callable[[], object]) -> float:
        started = time.perf_counter()
        call()
        return (time.perf_counter() - started) * 1000

    # In turns, so that both cases see the same machine.
    timed_ms(lambda: available_slots(availability, busy, now))
    empty_times, full_times = [], []
    for _ in range(repeats):
        empty_times.append(timed_ms(lambda: available_slots(availability, [], now)))
        full_times.append(timed_ms(lambda: available_slots(availability, busy, now)))
    left = len(available_slots(availability, busy, now))
    return statistics.median(empty_times), statistics.median(full_times), len(free), left


# ------------------------------------------------------------------ report


def verdict(passed: bool | None) -> str:
    return "—" if passed is None else ("PASS" if passed else "**FAIL**")


def machine_line(args: argparse.Namespace) -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_version = (wrk.stdout + wrk.stderr).split()[1] if (wrk.stdout + wrk.stderr).split() else "?"
    chromium = subprocess.run(
        [CHROMIUM, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    pg = "?"
    try:
        libpq = args.pg_admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(libpq, connect_timeout=3) as conn:
            pg = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]
    except psycopg.Error:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"SQLite {sqlite3.sqlite_version} · PostgreSQL {pg} · wrk {wrk_version} · {chromium}"
    )


def git_line() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    # The results file itself (rewritten by every run) is no local change of the code measured.
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", ".", f":(exclude){RESULTS.relative_to(ROOT)}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    commit = head.stdout.strip() or "unknown"
    return commit + (" with local changes" if dirty.stdout.strip() else "")


def report(
    args: argparse.Namespace,
    results: list[BackendResult],
    slots: tuple[float, float, int, int],
    elapsed: float,
) -> tuple[str, bool]:
    """Return the Markdown report and whether every request and budget passed."""
    ok = True
    label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    out = [
        "# OnceCal benchmark",
        "",
        f"`make bench` · {time.strftime('%Y-%m-%d %H:%M %Z')} · commit {git_line()} · {elapsed:.0f} s",
        "",
        f"Machine: {machine_line(args)}.",
        f"Server: gunicorn, {args.workers} sync workers (one per core), loopback. "
        f"Load: wrk, 1 thread, {args.connections} connections, `Accept-Encoding: {BROWSER_ENCODINGS}`, "
        f"after a 1 s warm-up; the endpoints take turns, 1 s each, for {max(1, round(args.duration))} rounds "
        f"(req/s over all rounds, p50 and p99 the medians of the rounds').",
        "",
        "## Server throughput and latency",
        "",
        "| endpoint | backend | req/s | p50 ms | p99 ms | vs /healthz | budget | verdict |",
        "|---|---|--:|--:|--:|--:|---|---|",
    ]
    budgets = {"get": GET_VS_HEALTHZ, "post": POST_VS_HEALTHZ}
    for result in results:
        floor = result.loads["healthz"].rps
        for key in ("healthz", "get", "post", "embed"):
            load = result.loads.get(key)
            if load is None:
                continue
            ratio = load.rps / floor if floor else 0.0
            limit = budgets.get(key)
            passed = None if limit is None else ratio >= limit
            ok &= passed is not False
            budget = "the floor" if key == "healthz" else (f"≥ {limit:.2f}" if limit else "—")
            out.append(
                f"| {load.name} | {label[result.name]} | {load.rps:,.0f} | {load.p50_ms:.1f} | "
                f"{load.p99_ms:.1f} | {ratio:.3f} | {budget} | {verdict(passed)} |"
            )
    out += [
        "",
        "POST: every request uses its own fresh link and page load, prepared before the timed part; "
        "each answer must be `303` to the new booking.",
        "",
        "## Scale",
        "",
        "| measure | backend | small | large | ratio | budget | verdict |",
        "|---|---|--:|--:|--:|---|---|",
    ]
    for result in results:
        ratio = result.latency_large_ms / result.latency_small_ms if result.latency_small_ms else 0.0
        passed = ratio <= LINKS_LATENCY_RATIO
        ok &= passed
        out.append(
            f"| GET /l/<token> p50, 1 connection, {result.links_small:,} → {result.links_large:,} links, "
            f"two servers in turns "
            f"| {label[result.name]} | {result.latency_small_ms:.2f} ms | {result.latency_large_ms:.2f} ms "
            f"| {ratio:.2f} | ≤ {LINKS_LATENCY_RATIO} | {verdict(passed)} |"
        )
    plans = [f"{label[r.name]} `{r.lookup_plan}`" for r in results if r.lookup_plan]
    empty, full, total, left = slots
    slots_ratio = full / empty if empty else 0.0
    slots_passed = slots_ratio <= SLOTS_RATIO
    ok &= slots_passed
    out += [
        f"| `available_slots`, 0 → 10,000 bookings in the window ({total:,} candidate slots, {left:,} left), "
        f"median of {args.slot_repeats} calls each, in turns "
        f"| (pure) | {empty:.2f} ms | {full:.2f} ms | {slots_ratio:.2f} | ≤ {SLOTS_RATIO:g} | {verdict(slots_passed)} |",
        "",
        f"Look-up by token hash in the large database: {'; '.join(plans)}." if plans else "",
        "",
        "## Weight",
        "",
        "| measure | backend | value | budget | verdict |",
        "|---|---|--:|---|---|",
    ]
    first = results[0] if results else None
    if first is not None:
        passed = 0 < first.embed_gzip <= EMBED_JS_GZIP_BYTES
        ok &= passed
        out.append(
            f"| embed.js, gzip as served (Brotli: {first.embed_br:,} B) | any | {first.embed_gzip:,} B "
            f"| ≤ {EMBED_JS_GZIP_BYTES:,} B | {verdict(passed)} |"
        )
    for result in results:
        if not args.browser_runs:
            continue
        name = label[result.name]
        checks = [
            (
                "embedded booking page, first load, bytes received (compressed, headers included)",
                f"{result.first_load_bytes:,} B",
                f"≤ {FIRST_LOAD_BYTES:,} B",
                0 < result.first_load_bytes <= FIRST_LOAD_BYTES,
            ),
            (
                "embedded booking page, first load, requests",
                str(result.first_load_requests),
                f"≤ {FIRST_LOAD_REQUESTS}",
                0 < result.first_load_requests <= FIRST_LOAD_REQUESTS,
            ),
            (
                "embedded booking page, requests to other hosts than OnceCal's",
                str(result.third_party),
                f"= {THIRD_PARTY_REQUESTS}",
                result.third_party == THIRD_PARTY_REQUESTS,
            ),
        ]
        for measure, value, budget, passed in checks:
            ok &= passed
            out.append(f"| {measure} | {name} | {value} | {budget} | {verdict(passed)} |")
    if first is not None and first.first_load_parts:
        parts = ", ".join(f"`{path}` {size:,} B" for path, size in first.first_load_parts)
        out += ["", f"First load of the embedded page ({label[first.name]}): {parts}."]
    if args.browser_runs:
        out += [
            "",
            "## Browser",
            "",
            "| measure | backend | median | min | max | host page's own DOMContentLoaded (median) |",
            "|---|---|--:|--:|--:|--:|",
        ]
        for result in results:
            if result.ready_ms:
                out.append(
                    f"| host page navigation start → iframe `ready`, Chromium, cold cache, "
                    f"{len(result.ready_ms)} loads | {label[result.name]} "
                    f"| {statistics.median(result.ready_ms):.0f} ms "
                    f"| {min(result.ready_ms):.0f} ms | {max(result.ready_ms):.0f} ms "
                    f"| {statistics.median(result.host_dcl_ms):.0f} ms |"
                )
    shifts = [(r, preset, value) for r in results for preset, value in r.layout_shift.items()]
    if shifts:
        out += [
            "",
            "## Layout shift",
            "",
            "| measure | backend | preset | value | budget | verdict |",
            "|---|---|---|--:|---|---|",
        ]
        for result, preset, value in shifts:
            passed = value <= LAYOUT_SHIFT
            ok &= passed
            out.append(
                f"| demo host page with the inline widget, cumulative layout shift (Lighthouse) "
                f"| {label[result.name]} | {preset} | {value:.3f} | ≤ {LAYOUT_SHIFT} | {verdict(passed)} |"
            )
    failures = [f for r in results for f in r.failures]
    ok &= not failures
    out += ["", "## Failed requests", ""]
    out += [f"- {f}" for f in failures] or ["None: every answer had its expected status, no socket errors."]
    notes = [n for r in results for n in r.notes]
    if notes:
        out += ["", "Seeding: " + "; ".join(notes) + "."]
    if args.quick:
        out += ["", "**Quick run** (`--quick`): short runs and fewer links; not a measurement."]
    return "\n".join(out) + "\n", ok


# -------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--duration", type=float, default=5, help="seconds of each timed wrk run")
    parser.add_argument("--latency-duration", type=float, default=3, help="seconds of each 1-connection run")
    parser.add_argument("--connections", type=int, default=0, help="wrk connections (default: 2 per worker)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="gunicorn workers (default: cores)"
    )
    parser.add_argument(
        "--links", type=int, default=1_000_000, help="links in the database for the large case"
    )
    parser.add_argument("--browser-runs", type=int, default=10, help="timed Chromium loads (0: no browser)")
    parser.add_argument(
        "--no-lighthouse",
        dest="lighthouse",
        action="store_false",
        help="skip Lighthouse's layout shift on the demo host page",
    )
    parser.add_argument(
        "--slot-repeats", type=int, default=15, help="timed calls of available_slots per case"
    )
    parser.add_argument(
        "--pg-admin-url",
        default=PG_ADMIN_URL,
        help="PostgreSQL URL to create and drop the benchmark's own database from",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the Markdown table")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 s runs, 10^4 links, 2 browser loads; writes bench/out/quick.md",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.latency_duration, args.links, args.browser_runs = 1, 1, 10_000, 2
        args.slot_repeats = 3
        if args.output == RESULTS:  # a smoke run never replaces the real results
            args.output = QUICK_RESULTS
    args.connections = args.connections or 2 * args.workers
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is missing: `apt-get install wrk` (make bench does it as root)", file=sys.stderr)
        return 2
    if args.lighthouse and not LIGHTHOUSE.exists():
        print("Lighthouse is missing: `make lighthouse` (npm ci in bench/lighthouse)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    log("slot computation: 0 and 10,000 bookings")
    slots = slots_figures(args.slot_repeats)
    results = []
    with tempfile.TemporaryDirectory(prefix="oncecal-bench-") as tmp:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            workdir = Path(tmp) / backend
            workdir.mkdir()
            results.append(bench_backend(backend, args, workdir))
    text, ok = report(args, results, slots, time.perf_counter() - started)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print()
    print(text)
    print(f"Written to {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}.")
    print(
        "All budgets PASS, no failed requests."
        if ok
        else "FAILED: see the verdicts and failed requests above."
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
