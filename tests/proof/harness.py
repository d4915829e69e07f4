"""Set-up shared by the race, crash and database-fault proofs.

A ``Site`` is a migrated database (a SQLite file, a PostgreSQL database of
its own, or one on a throwaway cluster), an owner with an API key, and
gunicorn with four workers on it; the test process keeps an app on the same
database and secret to seed links and to read the rows back. Clients load
each form with a real GET and release their POSTs together through a barrier.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from oncecal.app_objects import runtime
from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import Booking, Calendar, Event, OneTimeLink, OutboxMessage, Owner, utcnow
from oncecal.services import apikeys, links
from tests.conftest import ALL_DAY
from tests.support.apps import TEST_SECRET, create_pg_database, drop_pg_database, make_test_app
from tests.support.pages import BookingPage
from tests.support.servers import Server, free_port, migrate, server_env, start_server, stop_server

BACKENDS = ["sqlite", "postgresql"]
HTTP_TIMEOUT = 30
OWNER_EMAIL = "olga@example.com"


@contextmanager
def fresh_database(kind: str, tmp_dir: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield the URL of a fresh, empty database: a SQLite file or a PostgreSQL database of its own."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_dir / 'proof.sqlite3'}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    url = create_pg_database(admin_url)
    try:
        yield url
    finally:
        drop_pg_database(admin_url, url)


@dataclass
class Site:
    """A migrated database with one owner, and gunicorn (4 workers) on it once started."""

    database_url: str
    env: dict[str, str]
    app: Flask  # same database and secret as the server: seeds and reads rows back
    owner_id: int
    api_key: str
    log_dir: Path
    server: Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None, "the server is not running"
        return self.server.url

    # --- the server -------------------------------------------------------------------------

    def start(self, *, port: int | None = None) -> Server:
        self.server = start_server(self.env, self.log_dir, workers=4, port=port)
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            stop_server(self.server)
            self.server = None

    # --- seeding ----------------------------------------------------------------------------

    def new_calendar(self, **fields: Any) -> int:
        """Add a calendar of the owner's, open around the clock unless told otherwise."""
        with self.app.app_context():
            calendar = Calendar(
                owner_id=self.owner_id,
                name=fields.pop("name", "Consultation"),
                slug=fields.pop("slug", f"cal-{secrets.token_hex(4)}"),
                weekly_hours=fields.pop("weekly_hours", ALL_DAY),
                min_notice_minutes=fields.pop("min_notice_minutes", 0),
                **fields,
            )
            db.session.add(calendar)
            db.session.commit()
            return calendar.id

    def calendar_slug(self, calendar_id: int) -> str:
        with self.app.app_context():
            return db.session.get_one(Calendar, calendar_id).slug

    def issue_links(self, calendar_id: int, count: int, **fields: Any) -> list[tuple[int, str]]:
        """Issue ``count`` links on the calendar in one transaction; return (id, token) pairs."""
        with self.app.app_context():
            calendar = db.session.get_one(Calendar, calendar_id)
            now = utcnow()
            issued = []
            with write_transaction():  # each link joins this one transaction
                for _ in range(count):
                    link, token = links.issue_link(calendar, runtime().link_keys, now=now, **fields)
                    issued.append((link.id, token))
            db.session.remove()
            return issued

    def open_slots(self, calendar_id: int, margin: timedelta = timedelta(hours=1)) -> list[str]:
        """The calendar's free slots as the form posts them, none that could slip into the past."""
        from oncecal.services.bookings import open_slots

        with self.app.app_context():
            now = utcnow()
            calendar = db.session.get_one(Calendar, calendar_id)
            return [iso(s) for s in open_slots(calendar, now) if s >= now + margin]

    # --- clients ----------------------------------------------------------------------------

    def load_form(self, token: str) -> BookingPage:
        return self.load_page(f"/l/{token}")

    def post_form(self, token: str, form: dict[str, str]) -> requests.Response:
        return self.post_page(f"/l/{token}", form)

    def load_page(self, path: str) -> BookingPage:
        """Load a booking page (``/l/<token>``, ``/c/<slug>``) and read its form."""
        response = requests.get(f"{self.url}{path}", timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, f"GET {path} answered {response.status_code}"
        return BookingPage.parse(response.text)

    def post_page(self, path: str, form: dict[str, str]) -> requests.Response:
        return requests.post(f"{self.url}{path}", data=form, allow_redirects=False, timeout=HTTP_TIMEOUT)

    def api_create_link(self, body: dict[str, Any], **headers: str) -> requests.Response:
        return requests.post(
            f"{self.url}/api/v1/one-time-links",
            json=body,
            headers={"Authorization": f"Bearer {self.api_key}", **headers},
            timeout=HTTP_TIMEOUT,
        )

    # --- reading rows back ------------------------------------------------------------------

    def ledger(self, link_ids: Iterable[int]) -> Ledger:
        """Compare each link's uses with its bookings (cancelled ones included)."""
        ids = list(link_ids)
        with self.app.app_context():
            uses = dict(
                db.session.execute(
                    sa.select(OneTimeLink.id, OneTimeLink.uses).where(OneTimeLink.id.in_(ids))
                ).all()
            )
            booked = Counter(
                db.session.scalars(sa.select(Booking.link_id).where(Booking.link_id.in_(ids))).all()
            )
            db.session.remove()
        return Ledger(
            links=len(ids),
            bookings=sum(booked.values()),
            uses=sum(uses.values()),
            used_without_booking=sum(1 for i in ids if uses.get(i, 0) > booked[i]),
            booked_without_use=sum(1 for i in ids if booked[i] > uses.get(i, 0)),
        )

    def bookings(self, **where: Any) -> list[Booking]:
        with self.app.app_context():
            query = sa.select(Booking).filter_by(**where).order_by(Booking.id)
            rows = list(db.session.scalars(query))
            db.session.expunge_all()
            db.session.remove()
            return rows

    def link_uses(self, link_ids: Iterable[int]) -> dict[int, int]:
        with self.app.app_context():
            rows = db.session.execute(
                sa.select(OneTimeLink.id, OneTimeLink.uses).where(OneTimeLink.id.in_(list(link_ids)))
            ).all()
            db.session.remove()
            return dict(rows)

    def links_of(self, calendar_id: int) -> list[int]:
        with self.app.app_context():
            ids = db.session.scalars(
                sa.select(OneTimeLink.id).where(OneTimeLink.calendar_id == calendar_id)
            ).all()
            db.session.remove()
            return list(ids)

    def events_waiting(self) -> int:
        """How many recorded events the worker has not yet turned into deliveries."""
        with self.app.app_context():
            count = db.session.scalar(sa.select(sa.func.count(Event.id)).where(Event.fanned_out_at.is_(None)))
            db.session.remove()
            return count or 0

    def outbox_rows(self) -> list[OutboxMessage]:
        """Every outbox message (emails and webhooks), oldest first."""
        with self.app.app_context():
            rows = list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))
            db.session.expunge_all()
            db.session.remove()
            return rows

    def statuses(self, link_ids: Iterable[int]) -> Counter[str]:
        with self.app.app_context():
            now = utcnow()
            rows = db.session.scalars(sa.select(OneTimeLink).where(OneTimeLink.id.in_(list(link_ids))))
            counted = Counter(links.status_of(link, now).value for link in rows)
            db.session.remove()
            return counted


@dataclass(frozen=True)
class Ledger:
    links: int
    bookings: int
    uses: int
    used_without_booking: int
    booked_without_use: int

    @property
    def half_written(self) -> int:
        """Links whose uses and bookings disagree: a use without its booking or the reverse."""
        return self.used_without_booking + self.booked_without_use


@contextmanager
def make_site(
    database_url: str,
    log_dir: Path,
    *,
    start: bool = True,
    app_config: Mapping[str, Any] | None = None,
    **env: str,
) -> Iterator[Site]:
    """Migrate the database, add an owner with an API key, and (unless told not to) start gunicorn."""
    server_environment = server_env(database_url, TEST_SECRET, **env)
    migrate(server_environment)
    app = make_test_app(database_url, **(app_config or {}))
    with app.app_context():
        owner = Owner(email=OWNER_EMAIL, name="Olga Owner", password_hash="not-a-real-hash")
        db.session.add(owner)
        db.session.commit()
        _key, raw_key = apikeys.create_api_key(owner, "proof", utcnow())
        owner_id = owner.id
        db.session.remove()
    site = Site(database_url, server_environment, app, owner_id, raw_key, log_dir)
    try:
        if start:
            site.start()
        yield site
    finally:
        site.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --- requests ---------------------------------------------------------------------------------


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def release_at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run every call in its own thread, all released by one barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait(timeout=HTTP_TIMEOUT)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def codes(responses: Iterable[requests.Response | int | str]) -> str:
    """Count status codes as text, e.g. "303 × 1, 410 × 19" (what a row shows)."""
    counted = Counter(r.status_code if isinstance(r, requests.Response) else r for r in responses)
    return ", ".join(f"{code} × {n}" for code, n in sorted(counted.items(), key=lambda item: str(item[0])))


def server_errors(responses: Iterable[requests.Response]) -> int:
    return sum(1 for r in responses if r.status_code >= 500)


def is_clear_503(response: requests.Response) -> bool:
    """A 503 with Retry-After that says so: the HTML error page, or problem+json for the API."""
    if response.status_code != 503 or not response.headers.get("Retry-After", "").isdigit():
        return False
    kind = response.headers.get("Content-Type", "")
    if kind.startswith("application/problem+json"):
        body = response.json()
        return body.get("status") == 503 and bool(body.get("title")) and bool(body.get("detail"))
    return (
        kind.startswith("text/html")
        and "briefly unavailable" in response.text
        and "Nothing was booked" in response.text
    )


# --- a PostgreSQL cluster of the test's own -----------------------------------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster in a temp dir on a free port, run as the postgres OS user."""

    root: Path
    port: int
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "postgres.log"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args], timeout=timeout)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        )
        self._pg_ctl("-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "-w", "stop")

    def create_database(self) -> str:
        name = f"oncecal_fault_{secrets.token_hex(4)}"
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


def _as_postgres(command: list[str], timeout: float) -> None:
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """initdb a cluster in a temp dir, start it on a free port, and remove it afterwards.

    Never the machine's shared server: its own data directory, socket
    directory and port (asserted not to be 5432).
    """
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip(f"no PostgreSQL 15 binaries in {PG_BIN} or no runuser")
    root = Path(tempfile.mkdtemp(prefix="oncecal-pg-"))
    shutil.chown(root, "postgres", "postgres")
    port = free_port()
    assert port != 5432
    cluster = Cluster(root, port)
    try:
        _as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(cluster.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            timeout=120,
        )
        cluster.start()
        yield cluster
    finally:
        with suppress(Exception):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not reached in {timeout}s")
