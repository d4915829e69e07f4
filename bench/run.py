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
- Calendar connections: a link's booking page computed afresh (no kept
  page, in-process) with 10,000 synced busy times in its window beside one
  with none; one sync of a 5,000-event ICS feed served on loopback, in a
  process of its own: its peak memory above that process at rest, its time.

Ratios matter more than absolute times: both sides of a ratio run in the
same process tree, on the same machine, seconds apart. The table is printed
and written to bench/results.md; the exit status is 1 when any request
failed or any budget FAILs. Options: `--help`. `--quick` is a smoke run
(short runs, 10^4 links), not a measurement; `--only` measures some parts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import judge  # noqa: E402
from bench.load import (  # noqa: E402
    LIGHTHOUSE,
    BackendResult,
    bench_backend,
    connection_figures,
    log,
    slots_figures,
)
from bench.report import PARTIAL_RESULTS, QUICK_RESULTS, RESULTS, report  # noqa: E402
from bench.seed import PG_ADMIN_URL  # noqa: E402

# What a run measures: the served figures (gunicorn, wrk, Chromium, Lighthouse),
# the pure slot computation, the calendar connections' figures.
PARTS = ("server", "slots", "connections")


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
        "--busy-runs", type=int, default=21, help="timed booking pages per case, with and without busy times"
    )
    parser.add_argument(
        "--feed-events", type=int, default=5_000, help="VEVENTs in the synced feed (a tenth weekly RRULEs)"
    )
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"comma-separated parts to measure, of {', '.join(PARTS)} (default: all; a run of some writes bench/out/only.md)",
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
        help="smoke run: 1 s runs, 10^4 links, 2 browser loads, a 1,000-event feed; writes bench/out/quick.md",
    )
    args = parser.parse_args(argv)
    args.parts = {part.strip() for part in args.only.split(",") if part.strip()}
    if not args.parts or args.parts - set(PARTS):
        parser.error(f"--only takes {', '.join(PARTS)}, not {args.only!r}")
    if args.quick:
        args.duration, args.latency_duration, args.links, args.browser_runs = 1, 1, 10_000, 2
        args.slot_repeats, args.busy_runs, args.feed_events = 3, 5, 1_000
        if args.output == RESULTS:  # a smoke run never replaces the real results
            args.output = QUICK_RESULTS
    elif args.parts != set(PARTS) and args.output == RESULTS:  # nor does a run of some parts
        args.output = PARTIAL_RESULTS
    args.connections = args.connections or 2 * args.workers
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = "server" in args.parts
    if server and shutil.which("wrk") is None:
        print("wrk is missing: `apt-get install wrk` (make bench does it as root)", file=sys.stderr)
        return 2
    if server and args.lighthouse and not LIGHTHOUSE.exists():
        print("Lighthouse is missing: `make lighthouse` (npm ci in bench/lighthouse)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    slots = None
    if "slots" in args.parts:
        log("slot computation: 0 and 10,000 bookings")
        slots = slots_figures(args.slot_repeats)
    results = []
    with tempfile.TemporaryDirectory(prefix="oncecal-bench-") as tmp:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            workdir = Path(tmp) / backend
            workdir.mkdir()
            result = bench_backend(backend, args, workdir) if server else BackendResult(backend)
            if "connections" in args.parts:  # once the servers are gone: a quiet machine
                connection_figures(backend, args, workdir, result)
            results.append(result)
    verdicts = judge(results, slots, server=server, browser=server and bool(args.browser_runs))
    text = report(args, results, verdicts, time.perf_counter() - started)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print()
    print(text)
    print(f"Written to {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}.")
    print(
        "All budgets PASS, no failed requests."
        if verdicts.ok
        else "FAILED: see the verdicts and failed requests above."
    )
    return 0 if verdicts.ok else 1


if __name__ == "__main__":
    sys.exit(main())
