"""The measuring: gunicorn loaded by wrk in rounds, Chromium and Lighthouse on the demo host page, the slot
computation timed, a booking page with synced busy times computed in-process, one feed sync in a process of its own."""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import requests
import sqlalchemy as sa

from bench.seed import (
    apart_busy,
    bulk_busy,
    bulk_links,
    connect_feed,
    count_links,
    database,
    feed_ics,
    issue_links,
    lookup_plan,
    off_hours_busy,
    seed_measured,
    seed_owner_and_calendars,
)
from oncecal.extensions import db
from oncecal.models import BusyInterval, Calendar, ConnectedCalendar, utcnow
from oncecal.services import bookings
from oncecal.services.slots import Availability, available_slots
from tests.support.apps import TEST_SECRET, make_test_app
from tests.support.httpstub import HTTPStub
from tests.support.live import CHROMIUM, CHROMIUM_ARGS
from tests.support.pages import BookingPage
from tests.support.servers import Server, migrate, running_server, server_env

WRK_DIR = Path(__file__).resolve().parent / "wrk"
ONESYNC = Path(__file__).resolve().parent / "onesync.py"
LIGHTHOUSE = Path(__file__).resolve().parent / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
BROWSER_ENCODINGS = "gzip, deflate, br"
HTTP_TIMEOUT = 30
# The calendar connections' figures: busy times in the measured page's window, and the synced feed.
BUSY_EVENTS = 10_000
# A sync may be slow (a feed's recurrences are expanded in Python): past this, its figure is a failure.
SYNC_TIMEOUT_SECONDS = 1200
# Never read: the busy copy is fresh, so no page starts a refresh of it.
UNREAD_FEED_URL = "https://feed.invalid/busy.ics"


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
class BackendResult:
    """Everything measured on one backend."""

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
    busy_page: BusyPage | None = None
    busy_page_apart: BusyPage | None = None
    sync: SyncCost | None = None
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SlotTimes:
    """`available_slots` with an empty and with a full window: medians in ms, and the slots."""

    empty_ms: float
    full_ms: float
    candidates: int
    left: int


@dataclass(frozen=True)
class BusyPage:
    """A link's page computed afresh (no kept page), its calendar without and with synced busy times: medians in ms."""

    events: int
    runs: int
    plain_ms: float
    busy_ms: float
    slots: int  # in the week both pages show
    rows: int  # the rows the synced copy keeps of the events (joined where they overlap)
    apart: bool = False  # the busy times never overlap: nothing joined (reported, no budget)


@dataclass(frozen=True)
class SyncCost:
    """One sync of a feed in a process of its own (bench/onesync.py): what it read, kept, took."""

    events: int
    weekly: int
    feed_bytes: int
    expected: int  # the busy times the feed makes in the window
    stored: int  # the rows the sync left
    ok: bool
    error: str | None
    seconds: float
    cpu_seconds: float
    rest_mib: float  # the process's resident set before the sync
    peak_mib: float  # its peak resident set during the sync
    peak_reset: bool  # whether the peak was reset to the resident set before the sync

    @property
    def sync_mib(self) -> float:
        """What the sync took above the process at rest."""
        return self.peak_mib - self.rest_mib


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


def slots_figures(repeats: int) -> SlotTimes:
    """Time available_slots with 0 and with 10,000 bookings in its window."""
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
    return SlotTimes(statistics.median(empty_times), statistics.median(full_times), len(free), left)


# ------------------------------------------------------ calendar connections


def connection_figures(backend: str, args: argparse.Namespace, workdir: Path, result: BackendResult) -> None:
    """On a database of its own: the booking page with busy times beside one without, then one feed sync."""
    with database(backend, workdir, args.pg_admin_url, "connections") as url:
        log(f"{backend}: calendar connections: migrating a fresh database")
        migrate(server_env(url, TEST_SECRET))
        app = make_test_app(url, TESTING=False)
        try:
            log(
                f"{backend}: booking page computed afresh, 0 and {BUSY_EVENTS:,} busy times, {args.busy_runs} each"
            )
            result.busy_page = busy_page_figures(app, args.busy_runs, result, off_hours_busy)
            log(f"{backend}: the same with {BUSY_EVENTS:,} busy times apart (none joined)")
            result.busy_page_apart = busy_page_figures(app, args.busy_runs, result, apart_busy)
            log(f"{backend}: one sync of a {args.feed_events:,}-event feed in a process of its own")
            result.sync = sync_figures(app, url, args.feed_events)
            if result.sync is None:
                result.failures.append(f"feed sync: not done in {SYNC_TIMEOUT_SECONDS} s")
            elif not result.sync.ok or result.sync.stored != result.sync.expected:
                result.failures.append(
                    f"feed sync: {result.sync.error or 'ok'}, {result.sync.stored:,} busy times stored "
                    f"of {result.sync.expected:,} expected"
                )
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def busy_page_figures(
    app: Any,
    runs: int,
    result: BackendResult,
    spread: Callable[[datetime, int, int], list[tuple[datetime, datetime]]],
) -> BusyPage:
    """Time GET /l/<token> in-process, no kept page, on two calendars in turns: one with BUSY_EVENTS busy times.

    Both have the measured rules; the busy one checks an ICS feed whose copy
    is fresh (no page reads the feed) and holds BUSY_EVENTS busy times in the
    page's window, off the calendar's hours, so both pages show the same
    slots. Each request forgets the kept pages first (as `bench/profile.py
    get --cold`): the page is computed as a calendar's first view of a minute is.
    """
    plain_id, busy_id = seed_owner_and_calendars(app, 2, f"busy-page-{spread.__name__}")
    now = utcnow()
    source_id = connect_feed(app, busy_id, UNREAD_FEED_URL, last_attempt_at=now)
    rows = bulk_busy(app, source_id, spread(now, BUSY_EVENTS, 60))
    paths = {
        case: f"/l/{issue_links(app, [calendar_id], 1)[0][1]}"
        for case, calendar_id in (("plain", plain_id), ("busy", busy_id))
    }
    client = app.test_client()
    headers = {"Accept-Encoding": BROWSER_ENCODINGS}

    def cold_ms(case: str) -> float:
        app.extensions.pop("oncecal.booking_pages", None)
        started = time.perf_counter()
        response = client.get(paths[case], headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"the {case} booking page answered {response.status_code}")
        return elapsed

    shown = {
        case: BookingPage.parse(client.get(path).get_data(as_text=True)).slots for case, path in paths.items()
    }
    if shown["plain"] != shown["busy"] or not shown["plain"]:
        result.failures.append(
            f"busy page: {len(shown['busy'])} slots shown with busy times, {len(shown['plain'])} without"
        )
    for _ in range(5):  # warm up: templates compiled, statements cached
        cold_ms("plain")
        cold_ms("busy")
    times: dict[str, list[float]] = {"plain": [], "busy": []}
    for index in range(runs):  # in turns, each going first every other time
        for case in ("plain", "busy") if index % 2 == 0 else ("busy", "plain"):
            times[case].append(cold_ms(case))
    with app.app_context():
        source = db.session.get_one(ConnectedCalendar, source_id)
        if source.last_attempt_at != now or source.error is not None:
            result.failures.append(
                f"busy page: a page read the feed ({source.error}); the times are not valid"
            )
    return BusyPage(
        BUSY_EVENTS,
        runs,
        statistics.median(times["plain"]),
        statistics.median(times["busy"]),
        len(shown["plain"]),
        rows,
        apart=spread is apart_busy,
    )


def sync_figures(app: Any, url: str, events: int) -> SyncCost | None:
    """Serve an ``events``-event feed on loopback and sync it once in a fresh process (bench/onesync.py).

    A tenth of the events are weekly RRULEs. None when the sync did not end
    within SYNC_TIMEOUT_SECONDS.
    """
    (calendar_id,) = seed_owner_and_calendars(app, 1, "synced")
    now = utcnow()
    weekly = events // 10
    body, expected = feed_ics(now, events, weekly)
    with HTTPStub() as stub:
        feed_url = stub.route("/busy.ics", body, headers={"Content-Type": "text/calendar; charset=utf-8"})
        source_id = connect_feed(app, calendar_id, feed_url, last_attempt_at=None)
        try:
            done = subprocess.run(
                [sys.executable, str(ONESYNC), url, str(source_id), now.isoformat()],
                cwd=ONESYNC.parent.parent,
                env=server_env(url, TEST_SECRET),
                capture_output=True,
                text=True,
                timeout=SYNC_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
    line = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else []
    if not line:
        raise RuntimeError(f"bench/onesync.py failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line[0])
    with app.app_context():
        stored = db.session.scalar(
            sa.select(sa.func.count()).select_from(BusyInterval).where(BusyInterval.source_id == source_id)
        )
    return SyncCost(
        events=events,
        weekly=weekly,
        feed_bytes=len(body),
        expected=expected,
        stored=stored or 0,
        ok=bool(data["ok"]),
        error=data["error"],
        seconds=float(data["seconds"]),
        cpu_seconds=float(data["cpu_seconds"]),
        rest_mib=data["rest_kib"] / 1024,
        peak_mib=data["peak_kib"] / 1024,
        peak_reset=bool(data["peak_reset"]),
    )
