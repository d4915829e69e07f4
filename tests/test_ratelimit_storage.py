"""The default rate-limit storage: one SQLite file whose counts every process shares."""

from __future__ import annotations

import time
from pathlib import Path

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from oncecal.ratelimit_storage import SQLiteFileStorage


def test_two_storages_on_one_file_count_together(tmp_path: Path):
    uri = f"sqlite://{tmp_path / 'counts.sqlite3'}"
    first, second = storage_from_string(uri), storage_from_string(uri)
    assert isinstance(first, SQLiteFileStorage) and first is not second
    assert [first.incr("client", 60), second.incr("client", 60), first.incr("other", 60)] == [1, 2, 1]
    assert second.get("client") == 2 and first.check()
    assert time.time() < first.get_expiry("client") <= time.time() + 60


def test_a_window_that_ran_out_starts_over_and_clear_forgets(tmp_path: Path):
    storage = storage_from_string(f"sqlite://{tmp_path / 'counts.sqlite3'}")
    assert [storage.incr("client", 0), storage.incr("client", 0)] == [1, 1]
    assert storage.get("client") == 0
    storage.incr("kept", 60)
    storage.clear("kept")
    assert storage.get("kept") == 0


def test_the_limiter_refuses_the_hit_past_the_limit(tmp_path: Path):
    limiter = FixedWindowRateLimiter(storage_from_string(f"sqlite://{tmp_path / 'counts.sqlite3'}"))
    limit = parse("3 per minute")
    assert [limiter.hit(limit, "token-404", "127.0.0.1") for _ in range(4)] == [True, True, True, False]
