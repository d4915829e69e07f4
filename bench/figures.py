"""The figures judged: ratios to the floor, medians, the budgets and each one's verdict."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.load import BackendResult, BusyPage, Load, SlotTimes, SyncCost

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
BUSY_PAGE_RATIO = 1.3
# Measured at 78 MiB (both databases) for bench/seed.py's 5,000-event feed
# (1.4 MB) at e33cd22, 55 MiB at 86f28e1 (recurrences expanded lazily):
# icalendar's tree of the whole feed, and the occurrences.
SYNC_MEMORY_MIB = 120

# The server table's endpoints, in order, with the share of /healthz each must reach.
VS_HEALTHZ: dict[str, float | None] = {
    "healthz": None,
    "get": GET_VS_HEALTHZ,
    "post": POST_VS_HEALTHZ,
    "embed": None,
}


@dataclass(frozen=True)
class Throughput:
    """One endpoint's wrk figures as a share of the floor, /healthz."""

    backend: str
    key: str
    load: Load
    vs_healthz: float
    budget: float | None
    passed: bool | None  # None: reported, no budget


@dataclass(frozen=True)
class Scale:
    """GET /l/<token> p50 with few links and with many, on one backend."""

    backend: str
    links_small: int
    links_large: int
    small_ms: float
    large_ms: float
    ratio: float
    passed: bool


@dataclass(frozen=True)
class Slots:
    """The slot computation with a full window beside an empty one."""

    times: SlotTimes
    ratio: float
    passed: bool


@dataclass(frozen=True)
class BusyPageCost:
    """A booking page computed afresh with synced busy times beside one without, on one backend."""

    backend: str
    page: BusyPage
    ratio: float
    passed: bool | None  # None: the busy times apart, reported with no budget


@dataclass(frozen=True)
class SyncMemory:
    """One feed sync in a process of its own: the memory it took above the process at rest."""

    backend: str
    cost: SyncCost
    passed: bool


@dataclass(frozen=True)
class Check:
    """One budget: a figure, its limit and the verdict."""

    measure: str
    backend: str
    value: str
    budget: str
    passed: bool


@dataclass(frozen=True)
class ReadyTimes:
    """Host page navigation start → the iframe's `ready`, over the timed Chromium loads."""

    backend: str
    loads: int
    median_ms: float
    min_ms: float
    max_ms: float
    host_dcl_median_ms: float


@dataclass(frozen=True)
class LayoutShift:
    backend: str
    preset: str
    value: float
    passed: bool


@dataclass(frozen=True)
class Verdicts:
    throughput: list[Throughput]
    scale: list[Scale]
    slots: Slots | None  # None: not measured (--only)
    weight: list[Check]
    ready: list[ReadyTimes]
    layout_shift: list[LayoutShift]
    busy_pages: list[BusyPageCost]
    syncs: list[SyncMemory]
    failures: list[str]

    @property
    def ok(self) -> bool:
        """Whether every budget passed and no request failed."""
        rows: list[Throughput | Scale | Slots | Check | LayoutShift | BusyPageCost | SyncMemory] = [
            *self.throughput,
            *self.scale,
            *([self.slots] if self.slots else []),
            *self.weight,
            *self.layout_shift,
            *self.busy_pages,
            *self.syncs,
        ]
        return all(row.passed is not False for row in rows) and not self.failures


def judge(results: list[BackendResult], slots: SlotTimes | None, *, server: bool, browser: bool) -> Verdicts:
    """Hold each backend's figures (and the slot computation's) against their budgets.

    ``server``: whether the served figures were measured (gunicorn, wrk, the
    browser); without them, only what was measured is judged.
    """
    served = results if server else []
    slots_ratio = slots.full_ms / slots.empty_ms if slots and slots.empty_ms else 0.0
    return Verdicts(
        throughput=[row for result in served for row in throughput(result)],
        scale=[scale(result) for result in served],
        slots=None if slots is None else Slots(slots, slots_ratio, slots_ratio <= SLOTS_RATIO),
        weight=weight(served, browser=browser),
        ready=[ready(result) for result in served if browser and result.ready_ms],
        layout_shift=[
            LayoutShift(result.name, preset, value, value <= LAYOUT_SHIFT)
            for result in served
            for preset, value in result.layout_shift.items()
        ],
        busy_pages=[
            busy_page(result.name, page)
            for result in results
            for page in (result.busy_page, result.busy_page_apart)
            if page
        ],
        syncs=[
            SyncMemory(result.name, result.sync, result.sync.ok and result.sync.sync_mib <= SYNC_MEMORY_MIB)
            for result in results
            if result.sync
        ],
        failures=[f for result in results for f in result.failures],
    )


def busy_page(backend: str, page: BusyPage) -> BusyPageCost:
    ratio = page.busy_ms / page.plain_ms if page.plain_ms else 0.0
    return BusyPageCost(backend, page, ratio, None if page.apart else 0 < ratio <= BUSY_PAGE_RATIO)


def throughput(result: BackendResult) -> list[Throughput]:
    floor = result.loads["healthz"].rps
    rows = []
    for key, budget in VS_HEALTHZ.items():
        load = result.loads.get(key)
        if load is None:
            continue
        ratio = load.rps / floor if floor else 0.0
        rows.append(
            Throughput(result.name, key, load, ratio, budget, None if budget is None else ratio >= budget)
        )
    return rows


def scale(result: BackendResult) -> Scale:
    small, large = result.latency_small_ms, result.latency_large_ms
    ratio = large / small if small else 0.0
    return Scale(
        result.name,
        result.links_small,
        result.links_large,
        small,
        large,
        ratio,
        ratio <= LINKS_LATENCY_RATIO,
    )


def weight(results: list[BackendResult], *, browser: bool) -> list[Check]:
    """embed.js as served (the first backend's: it is a static file), then each backend's first load."""
    checks = []
    if results:
        first = results[0]
        checks.append(
            Check(
                f"embed.js, gzip as served (Brotli: {first.embed_br:,} B)",
                "any",
                f"{first.embed_gzip:,} B",
                f"≤ {EMBED_JS_GZIP_BYTES:,} B",
                0 < first.embed_gzip <= EMBED_JS_GZIP_BYTES,
            )
        )
    if not browser:
        return checks
    for result in results:
        checks += [
            Check(
                "embedded booking page, first load, bytes received (compressed, headers included)",
                result.name,
                f"{result.first_load_bytes:,} B",
                f"≤ {FIRST_LOAD_BYTES:,} B",
                0 < result.first_load_bytes <= FIRST_LOAD_BYTES,
            ),
            Check(
                "embedded booking page, first load, requests",
                result.name,
                str(result.first_load_requests),
                f"≤ {FIRST_LOAD_REQUESTS}",
                0 < result.first_load_requests <= FIRST_LOAD_REQUESTS,
            ),
            Check(
                "embedded booking page, requests to other hosts than OnceCal's",
                result.name,
                str(result.third_party),
                f"= {THIRD_PARTY_REQUESTS}",
                result.third_party == THIRD_PARTY_REQUESTS,
            ),
        ]
    return checks


def ready(result: BackendResult) -> ReadyTimes:
    return ReadyTimes(
        result.name,
        len(result.ready_ms),
        statistics.median(result.ready_ms),
        min(result.ready_ms),
        max(result.ready_ms),
        statistics.median(result.host_dcl_ms),
    )
