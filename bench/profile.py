"""Profile one request kind in-process with pyinstrument: what a slow figure of `make bench` costs.

    .venv/bin/python bench/profile.py get      # GET /l/<token> (its calendar's page kept, as in a campaign)
    .venv/bin/python bench/profile.py get --cold  # the same, rendered afresh each time
    .venv/bin/python bench/profile.py get --cold --busy 10000  # its calendar checking a feed: 10,000 busy times
    .venv/bin/python bench/profile.py post     # POST /l/<token> (fresh link and page load each)
    .venv/bin/python bench/profile.py healthz  # the floor
    .venv/bin/python bench/profile.py post --postgresql  # on a PostgreSQL database of its own

The app runs on a temporary SQLite file (or, with --postgresql, a database it
creates and drops on the benchmark's PostgreSQL) with the benchmark's calendar and is
called through Flask's test client (no server, no network), so the profile
shows the app's own work. Prints the mean time per request and the profile.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyinstrument import Profiler  # noqa: E402

from bench.load import BROWSER_ENCODINGS, UNREAD_FEED_URL  # noqa: E402
from bench.seed import (  # noqa: E402
    PG_ADMIN_URL,
    bulk_busy,
    connect_feed,
    database,
    issue_links,
    off_hours_busy,
    seed_owner_and_calendars,
)
from oncecal.extensions import db  # noqa: E402
from oncecal.models import Calendar, utcnow  # noqa: E402
from oncecal.services import bookings  # noqa: E402
from tests.support.apps import make_test_app  # noqa: E402
from tests.support.pages import BookingPage  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=["get", "post", "healthz"])
    parser.add_argument("-n", type=int, default=200, help="requests to profile")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    parser.add_argument("--time-only", action="store_true", help="no profiler: only the time per request")
    parser.add_argument("--all", action="store_true", help="show library frames too")
    parser.add_argument(
        "--cold", action="store_true", help="get: forget the kept page before each request (a first view)"
    )
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        metavar="N",
        help="the calendar checks a feed whose fresh copy holds N busy times off its hours (make bench's busy page)",
    )
    parser.add_argument(
        "--postgresql",
        nargs="?",
        const=PG_ADMIN_URL,
        metavar="ADMIN_URL",
        help=f"on PostgreSQL: a database made (and dropped) from ADMIN_URL (default {PG_ADMIN_URL})",
    )
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="oncecal-profile-") as tmp,
        database(
            "postgresql" if args.postgresql else "sqlite", Path(tmp), args.postgresql or "", "profile"
        ) as url,
    ):
        app = make_test_app(url, TESTING=False)
        with app.app_context():
            db.create_all()
        calendars = seed_owner_and_calendars(app, max(1, args.n // 500 + 1), "profile")
        if args.busy:
            now = utcnow()
            source_id = connect_feed(app, calendars[0], UNREAD_FEED_URL, last_attempt_at=now)
            bulk_busy(app, source_id, off_hours_busy(now, args.busy, days=60))
        with app.app_context():
            slots = bookings.open_slots(db.session.get_one(Calendar, calendars[0]), utcnow())[8:]
        issued = issue_links(app, calendars, args.n if args.kind == "post" else 1)
        client = app.test_client()
        headers = {"Accept-Encoding": BROWSER_ENCODINGS}
        form_headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}

        calls = []
        if args.kind == "post":
            for index, (_calendar, token) in enumerate(issued):
                page = BookingPage.parse(client.get(f"/l/{token}").get_data(as_text=True))
                slot = slots[index // len(calendars)].strftime("%Y-%m-%dT%H:%M:%SZ")
                body = urlencode(page.form(slot=slot))
                calls.append(partial(client.post, f"/l/{token}", data=body, headers=form_headers))
        else:
            path = "/healthz" if args.kind == "healthz" else f"/l/{issued[0][1]}"
            calls = [partial(client.get, path, headers=headers)] * args.n
            if args.cold:
                calls = [partial(_cold_get, app, client, path, headers)] * args.n
            for _ in range(20):  # warm up: templates compiled, caches filled
                client.get(path, headers=headers)

        expected = 303 if args.kind == "post" else 200
        profiler = Profiler(interval=0.0005)
        started, cpu_started = time.perf_counter(), time.process_time()
        if not args.time_only:
            profiler.start()
        for call in calls:
            response = call()
            if response.status_code != expected:
                raise SystemExit(f"answered {response.status_code}, expected {expected}")
        if not args.time_only:
            profiler.stop()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

    mode = "not profiled" if args.time_only else "profiled"
    each, cpu_each = elapsed / len(calls) * 1000, cpu / len(calls) * 1000
    # CPU time is this process's own (the app's): steadier than wall time on a
    # shared machine, but without the database server's part on PostgreSQL.
    print(f"{args.kind}: {len(calls)} requests, {each:.2f} ms each, {cpu_each:.2f} ms of CPU ({mode})")
    if args.time_only:
        return 0
    print(profiler.output_text(unicode=True, color=False, show_all=args.all))
    if args.html:
        args.html.write_text(profiler.output_html())
    return 0


def _cold_get(app: Any, client: Any, path: str, headers: dict[str, str]) -> Any:
    """GET a booking page as its calendar's first view: no kept page (blueprints/booking/pagecache.py)."""
    app.extensions.pop("oncecal.booking_pages", None)
    return client.get(path, headers=headers)


if __name__ == "__main__":
    sys.exit(main())
