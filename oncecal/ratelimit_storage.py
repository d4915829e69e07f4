"""A rate-limit storage in a SQLite file, shared by every process on one host.

The default for ONCECAL_RATELIMIT_STORAGE_URI: with memory:// each gunicorn worker
counted alone, so N workers let a guesser through N times the limit. Importing this
module registers the ``sqlite://`` scheme with the ``limits`` library, which both the
token throttle and Flask-Limiter build their storage from. Several hosts need Redis.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from urllib.parse import urlsplit

from limits.storage import Storage

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID
"""

# One statement: starting a new window or counting in the current one cannot interleave
# with another process's hit (SQLite takes its write lock for the statement).
INCREMENT = """
INSERT INTO counters (key, count, expires_at) VALUES (:key, :amount, :now + :expiry)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN expires_at <= :now THEN excluded.count ELSE count + excluded.count END,
    expires_at = CASE WHEN expires_at <= :now THEN excluded.expires_at ELSE expires_at END
RETURNING count
"""


class SQLiteFileStorage(Storage):
    """Fixed-window counters in one SQLite file (``sqlite:///path/to/file``)."""

    STORAGE_SCHEME = ["sqlite"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: float | str | bool):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = urlsplit(uri or "").path
        if not self.path:
            raise ValueError("sqlite:// rate-limit storage needs a file: sqlite:///path/to/file")
        self._local = threading.local()

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread and per process: a connection must not cross a fork.
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        connection = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(SCHEMA)
        self._local.held = (os.getpid(), connection)
        return connection

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        connection = self._connection()
        # Expired windows of other clients go, so the file stays as small as the clients of one window.
        connection.execute("DELETE FROM counters WHERE expires_at <= ? AND key <> ?", (now, key))
        params = {"key": key, "amount": amount, "now": now, "expiry": expiry}
        ((count,),) = connection.execute(INCREMENT, params).fetchall()
        return int(count)

    def get(self, key: str) -> int:
        row = (
            self._connection()
            .execute("SELECT count FROM counters WHERE key = ? AND expires_at > ?", (key, time.time()))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        row = (
            self._connection()
            .execute("SELECT expires_at FROM counters WHERE key = ? AND expires_at > ?", (key, now))
            .fetchone()
        )
        return float(row[0]) if row else now

    def check(self) -> bool:
        return self._connection().execute("SELECT 1").fetchone() == (1,)

    def reset(self) -> int | None:
        return self._connection().execute("DELETE FROM counters").rowcount

    def clear(self, key: str) -> None:
        self._connection().execute("DELETE FROM counters WHERE key = ?", (key,))
