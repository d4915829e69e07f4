"""One `connections.sync_source` in a process of its own: the memory and the time it takes, as one JSON line.

    .venv/bin/python bench/onesync.py DATABASE_URL SOURCE_ID NOW

Run by bench/load.py (``sync_figures``) with the environment of
tests/support/servers.py's ``server_env``. The app is built as the tests
build it, TESTING off and loopback feeds allowed (the feed is the
benchmark's own, on 127.0.0.1), and its database connection opened, as a
worker's is; then the process's resident set is read, its peak reset to
it, and the one sync runs.

Memory is Linux's VmHWM (/proc/self/status), the peak resident set of this
process's own memory, reset to the current resident set just before the
sync (``5`` written to /proc/self/clear_refs). Not ``getrusage``'s
ru_maxrss: Linux carries that over an exec from the process that forked it,
so a child of a big parent starts at the parent's peak.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from oncecal.extensions import db  # noqa: E402
from oncecal.models import ConnectedCalendar  # noqa: E402
from oncecal.services import connections  # noqa: E402
from tests.support.apps import make_test_app  # noqa: E402


def memory_kib() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in KiB."""
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0])
    return found


def reset_peak() -> bool:
    """Set VmHWM to the present resident set; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    url, source_id, now = argv[1], int(argv[2]), datetime.fromisoformat(argv[3])
    app = make_test_app(url, TESTING=False, CONNECTIONS_ALLOW_PRIVATE=True)
    with app.app_context():
        # A worker at rest: its modules loaded, its database connection open.
        db.session.scalar(sa.select(ConnectedCalendar.id).where(ConnectedCalendar.id == source_id))
        db.session.rollback()
        gc.collect()
        before = memory_kib()
        reset = reset_peak()
        started, cpu_started = time.perf_counter(), time.process_time()
        result = connections.sync_source(source_id, now)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        after = memory_kib()
        db.session.remove()
        db.engine.dispose()
    rest = before["VmRSS"] if reset else before["VmHWM"]
    print(
        json.dumps(
            {
                "ok": result.ok,
                "changed": result.changed,
                "error": result.error,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "rest_kib": rest,
                "peak_kib": after["VmHWM"],
                "peak_reset": reset,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
