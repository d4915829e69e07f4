"""The report: the Markdown tables that `make bench` prints and writes to bench/results.md."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import psycopg

from bench.figures import (
    BUSY_PAGE_RATIO,
    LAYOUT_SHIFT,
    LINKS_LATENCY_RATIO,
    SLOTS_RATIO,
    SYNC_MEMORY_MIB,
    Verdicts,
)
from bench.load import BROWSER_ENCODINGS, BackendResult
from tests.support.apps import libpq_url
from tests.support.live import CHROMIUM

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.md"
QUICK_RESULTS = Path(__file__).resolve().parent / "out" / "quick.md"
PARTIAL_RESULTS = Path(__file__).resolve().parent / "out" / "only.md"
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
    wrk_version, chromium = "?", "no Chromium"
    if shutil.which("wrk"):  # a run of --only connections or slots needs neither
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        wrk_version = (wrk.stdout + wrk.stderr).split()[1] if (wrk.stdout + wrk.stderr).split() else "?"
    if shutil.which(CHROMIUM):
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
    ]
    if verdicts.throughput:
        out += server_section(args, verdicts)
    if verdicts.scale or verdicts.slots:
        out += scale_section(args, results, verdicts)
    if verdicts.throughput:
        out += browser_sections(args, results, verdicts)
    if verdicts.busy_pages or verdicts.syncs:
        out += connections_section(args, verdicts)
    out += ["", "## Failed requests", ""]
    out += [f"- {f}" for f in verdicts.failures] or [
        "None: every answer had its expected status, no socket errors."
    ]
    notes = [n for r in results for n in r.notes]
    if notes:
        out += ["", "Seeding: " + "; ".join(notes) + "."]
    if args.quick:
        out += [
            "",
            "**Quick run** (`--quick`): short runs, fewer links, a 1,000-event feed; not a measurement.",
        ]
    return "\n".join(out) + "\n"


def server_section(args: argparse.Namespace, verdicts: Verdicts) -> list[str]:
    out = [
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
    ]
    return out


def scale_section(args: argparse.Namespace, results: list[BackendResult], verdicts: Verdicts) -> list[str]:
    out = [
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
    slots = verdicts.slots
    if slots is not None:
        out.append(
            f"| `available_slots`, 0 → 10,000 bookings in the window ({slots.times.candidates:,} candidate "
            f"slots, {slots.times.left:,} left), median of {args.slot_repeats} calls each, in turns "
            f"| (pure) | {slots.times.empty_ms:.2f} ms | {slots.times.full_ms:.2f} ms | {slots.ratio:.2f} "
            f"| ≤ {SLOTS_RATIO:g} | {verdict(slots.passed)} |"
        )
    plans = [f"{LABEL[r.name]} `{r.lookup_plan}`" for r in results if r.lookup_plan]
    if plans:
        out += ["", f"Look-up by token hash in the large database: {'; '.join(plans)}."]
    return out


def browser_sections(args: argparse.Namespace, results: list[BackendResult], verdicts: Verdicts) -> list[str]:
    out = [
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
    return out


def connections_section(args: argparse.Namespace, verdicts: Verdicts) -> list[str]:
    out = ["", "## Calendar connections"]
    if verdicts.busy_pages:
        out += [
            "",
            "| measure | backend | no busy times | with them | ratio | budget | verdict |",
            "|---|---|--:|--:|--:|--:|---|",
        ]
        for row in verdicts.busy_pages:
            page = row.page
            out.append(
                f"| GET /l/<token> computed afresh (no kept page), in-process, {page.events:,} synced busy "
                f"times {'apart (5 minutes every 6)' if page.apart else 'of 15 to 60 minutes'} off the "
                f"calendar's hours ({page.rows:,} rows once joined; both show {page.slots} slots), median of "
                f"{page.runs} each, in turns | {LABEL[row.backend]} | {page.plain_ms:.2f} ms "
                f"| {page.busy_ms:.2f} ms | {row.ratio:.2f} | {'—' if page.apart else f'≤ {BUSY_PAGE_RATIO}'} "
                f"| {verdict(row.passed)} |"
            )
    if verdicts.syncs:
        out += [
            "",
            "| measure | backend | busy rows kept (joined) | time (CPU) | process at rest | peak | sync's peak "
            "above rest | budget | verdict |",
            "|---|---|--:|--:|--:|--:|--:|--:|---|",
        ]
        for sync in verdicts.syncs:
            cost = sync.cost
            out.append(
                f"| one `sync_source` of a {cost.events:,}-event ICS feed ({cost.weekly} weekly RRULEs, "
                f"{cost.feed_bytes / 1e6:.1f} MB) from loopback, in a fresh process | {LABEL[sync.backend]} "
                f"| {cost.stored:,} of {cost.expected:,} | {cost.seconds:.2f} s ({cost.cpu_seconds:.2f} s) "
                f"| {cost.rest_mib:.0f} MiB | {cost.peak_mib:.0f} MiB | {cost.sync_mib:.0f} MiB "
                f"| ≤ {SYNC_MEMORY_MIB} MiB | {verdict(sync.passed)} |"
            )
        resets = all(sync.cost.peak_reset for sync in verdicts.syncs)
        out += [
            "",
            "Memory: the sync's process's peak resident set (VmHWM, "
            + ("reset to its resident set just before the sync" if resets else "not resettable here")
            + ") less its resident set before it, with the app loaded and its database connection open.",
        ]
    return out
