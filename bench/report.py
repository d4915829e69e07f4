"""The report: the Markdown tables that `make bench` prints and writes to bench/results.md."""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import time
from pathlib import Path

import psycopg

from bench.figures import LAYOUT_SHIFT, LINKS_LATENCY_RATIO, SLOTS_RATIO, Verdicts
from bench.load import BROWSER_ENCODINGS, BackendResult
from tests.support.apps import libpq_url
from tests.support.live import CHROMIUM

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.md"
QUICK_RESULTS = Path(__file__).resolve().parent / "out" / "quick.md"
LABEL = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


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
        with psycopg.connect(libpq_url(args.pg_admin_url), connect_timeout=3) as conn:
            pg = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]  # SHOW returns its one row
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


def report(args: argparse.Namespace, results: list[BackendResult], verdicts: Verdicts, elapsed: float) -> str:
    """Return the Markdown report of one run."""
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
    for row in verdicts.throughput:
        load = row.load
        budget = "the floor" if row.key == "healthz" else (f"≥ {row.budget:.2f}" if row.budget else "—")
        out.append(
            f"| {load.name} | {LABEL[row.backend]} | {load.rps:,.0f} | {load.p50_ms:.1f} | "
            f"{load.p99_ms:.1f} | {row.vs_healthz:.3f} | {budget} | {verdict(row.passed)} |"
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
    for row in verdicts.scale:
        out.append(
            f"| GET /l/<token> p50, 1 connection, {row.links_small:,} → {row.links_large:,} links, "
            f"two servers in turns "
            f"| {LABEL[row.backend]} | {row.small_ms:.2f} ms | {row.large_ms:.2f} ms "
            f"| {row.ratio:.2f} | ≤ {LINKS_LATENCY_RATIO} | {verdict(row.passed)} |"
        )
    plans = [f"{LABEL[r.name]} `{r.lookup_plan}`" for r in results if r.lookup_plan]
    slots = verdicts.slots
    out += [
        f"| `available_slots`, 0 → 10,000 bookings in the window ({slots.times.candidates:,} candidate slots, "
        f"{slots.times.left:,} left), median of {args.slot_repeats} calls each, in turns "
        f"| (pure) | {slots.times.empty_ms:.2f} ms | {slots.times.full_ms:.2f} ms | {slots.ratio:.2f} "
        f"| ≤ {SLOTS_RATIO:g} | {verdict(slots.passed)} |",
        "",
        f"Look-up by token hash in the large database: {'; '.join(plans)}." if plans else "",
        "",
        "## Weight",
        "",
        "| measure | backend | value | budget | verdict |",
        "|---|---|--:|---|---|",
    ]
    for check in verdicts.weight:
        backend = LABEL.get(check.backend, check.backend)
        out.append(
            f"| {check.measure} | {backend} | {check.value} | {check.budget} | {verdict(check.passed)} |"
        )
    first = results[0] if results else None
    if first is not None and first.first_load_parts:
        parts = ", ".join(f"`{path}` {size:,} B" for path, size in first.first_load_parts)
        out += ["", f"First load of the embedded page ({LABEL[first.name]}): {parts}."]
    if args.browser_runs:
        out += [
            "",
            "## Browser",
            "",
            "| measure | backend | median | min | max | host page's own DOMContentLoaded (median) |",
            "|---|---|--:|--:|--:|--:|",
        ]
        for ready in verdicts.ready:
            out.append(
                f"| host page navigation start → iframe `ready`, Chromium, cold cache, "
                f"{ready.loads} loads | {LABEL[ready.backend]} "
                f"| {ready.median_ms:.0f} ms | {ready.min_ms:.0f} ms | {ready.max_ms:.0f} ms "
                f"| {ready.host_dcl_median_ms:.0f} ms |"
            )
    if verdicts.layout_shift:
        out += [
            "",
            "## Layout shift",
            "",
            "| measure | backend | preset | value | budget | verdict |",
            "|---|---|---|--:|---|---|",
        ]
        for shift in verdicts.layout_shift:
            out.append(
                f"| demo host page with the inline widget, cumulative layout shift (Lighthouse) "
                f"| {LABEL[shift.backend]} | {shift.preset} | {shift.value:.3f} | ≤ {LAYOUT_SHIFT} "
                f"| {verdict(shift.passed)} |"
            )
    out += ["", "## Failed requests", ""]
    out += [f"- {f}" for f in verdicts.failures] or [
        "None: every answer had its expected status, no socket errors."
    ]
    notes = [n for r in results for n in r.notes]
    if notes:
        out += ["", "Seeding: " + "; ".join(notes) + "."]
    if args.quick:
        out += ["", "**Quick run** (`--quick`): short runs and fewer links; not a measurement."]
    return "\n".join(out) + "\n"
