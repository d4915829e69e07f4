"""Calendar connections: add, read, remove, and which connected calendars a OnceCal calendar uses.

A connection is a CalDAV account or an ICS feed; its calendars
(ConnectedCalendar) are read one at a time (``sync_source``): a lease is
taken, what the read needs is copied out of the database and the session's
transaction ended, the network is read on a thread of its own within one
deadline, and the copy is replaced in one short write, only if the lease is
still this reader's (oncecal.services.busycopy). A read that fails keeps
the last good copy, records the error and backs off. Secrets are sealed
before they are stored (oncecal.services.secretbox) and opened only to make
a request. Writing bookings into a connected calendar is
oncecal.services.writeback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, current_app

from oncecal.app_objects import runtime
from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import (
    Booking,
    Calendar,
    CalendarSource,
    ConnectedCalendar,
    Connection,
    Owner,
    utcnow,
)
from oncecal.services import busycopy, caldav_source, remote
from oncecal.services.busy import BusyTime, NotICalendar, TooManyEvents, busy_times
from oncecal.services.ics import uid_of_ref
from oncecal.services.remote import AuthFailed, Guard, RemoteError
from oncecal.services.secretbox import SecretBox
from oncecal.text import as_one_line

log = logging.getLogger("oncecal.connections")

SYNC_EVERY = timedelta(minutes=5)
# After the n-th failure in a row, the next read waits this long (the last one from then on).
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=1),
    timedelta(minutes=2),
    timedelta(minutes=4),
    SYNC_EVERY,
)
# How long a reader may hold a calendar before another may read it: longer than a read's deadline.
READ_LEASE = timedelta(seconds=90)
# A page waits at most this long for a refresh of a stale copy; then the last good copy serves.
PAGE_WAIT_SECONDS = 1.0
# How often (seconds) one process asks whether a calendar's copies are stale.
LOOK_AGAIN_AFTER = 30.0


class ConnectionError_(ValueError):
    """A connection cannot be made or used as asked: the text says why, for the owner."""


@dataclass(frozen=True)
class SyncResult:
    ok: bool
    changed: bool
    error: str | None = None
    # Another reader holds the calendar now: nothing was tried, nothing failed.
    skipped: bool = False


def guard_of(app: Flask) -> Guard:
    """The address rules of ONCECAL_CONNECTIONS_ALLOW_PRIVATE (and the tests' trusted addresses), the timeout."""
    allow = str(app.config.get("CONNECTIONS_ALLOW_PRIVATE", "")).lower() in ("1", "true", "yes")
    # The tests' stand-in for a public server (all theirs are on loopback): never outside tests.
    trusted = (app.config.get("CONNECTIONS_TRUSTED_ADDRESSES") or ()) if app.testing else ()
    timeout = float(app.config.get("CONNECTIONS_TIMEOUT_SECONDS") or remote.TIMEOUT_SECONDS)
    return Guard(allow_private=allow, trusted=frozenset(trusted), timeout=timeout)


def _box() -> SecretBox:
    return runtime().secrets


def _host(url: str) -> str:
    return (urlsplit(url).hostname or url)[:255]


def _name(text: str) -> str:
    """A name a server gave, as one line of at most 200 characters (the CLI prints it tab-separated)."""
    return as_one_line(text).strip()[:200] or "Calendar"


# --- adding -----------------------------------------------------------------


def add_caldav(owner: Owner, url: str, username: str, password: str, now: datetime) -> Connection:
    """Connect a CalDAV account: discover its calendars, store it (password sealed), read each once.

    Raises AuthFailed or RemoteError, storing nothing, when the login or the
    discovery fails. A calendar whose first read fails is kept, with its error.
    """
    guard = guard_of(current_app)
    account = caldav_source.Account(url.strip(), username, password, guard)
    service, found = remote.within(guard.deadline, caldav_source.discover, account)
    if not found:
        raise RemoteError("The account has no calendars with events.")
    same = sa.select(Connection.id).where(
        Connection.owner_id == owner.id, Connection.server_url == service, Connection.username == username
    )
    if db.session.scalar(same) is not None:
        raise RemoteError(
            f"{username} at {_host(service)} is connected already: give it a new password there."
        )
    sealed = _box().seal(password)
    connection = Connection(
        owner_id=owner.id,
        kind="caldav",
        host=_host(service),
        server_url=service,
        username=username,
        secret=sealed.token,
        key_id=sealed.key_id,
        created_at=now,
    )
    connection.calendars = [
        ConnectedCalendar(remote_url=f.url, name=_name(f.name), writable=True, next_sync_at=now)
        for f in found
    ]
    with write_transaction():
        db.session.add(connection)
    for source_id in [source.id for source in connection.calendars]:
        sync_source(source_id, now)
    return connection


def add_feed(owner: Owner, url: str, now: datetime) -> Connection:
    """Connect an ICS feed: read it once (it must be iCalendar), store it with its URL sealed.

    Raises RemoteError, storing nothing, when the feed cannot be read.
    """
    url = url.strip()
    if url.startswith("webcal://"):
        url = "https://" + url.removeprefix("webcal://")
    guard = guard_of(current_app)
    body = remote.within(guard.deadline, remote.read_feed, url, guard)
    times = _feed_times(body, now - timedelta(days=1), now + timedelta(days=62))
    sealed = _box().seal(url)
    connection = Connection(
        owner_id=owner.id,
        kind="ics",
        host=_host(url),
        secret=sealed.token,
        key_id=sealed.key_id,
        created_at=now,
    )
    connection.calendars = [ConnectedCalendar(name=_feed_name(body, url), writable=False, next_sync_at=now)]
    with write_transaction():
        db.session.add(connection)
        db.session.flush()
        _record_good(connection.calendars[0], times, now)
    return connection


def change_password(connection: Connection, password: str, now: datetime) -> None:
    """Give a CalDAV connection a new password, once the server takes it; its calendars are read again soon.

    Raises AuthFailed or RemoteError, changing nothing, when the server refuses it.
    """
    guard = guard_of(current_app)
    account = caldav_source.Account(connection.server_url or "", connection.username or "", password, guard)
    remote.within(guard.deadline, caldav_source.discover, account)
    sealed = _box().seal(password)
    with write_transaction():
        db.session.execute(
            sa.update(Connection)
            .where(Connection.id == connection.id)
            .values(secret=sealed.token, key_id=sealed.key_id)
        )
        db.session.execute(
            sa.update(ConnectedCalendar)
            .where(ConnectedCalendar.connection_id == connection.id)
            .values(next_sync_at=now, error=None, error_kind=None, failures=0)
        )


def _feed_times(body: bytes, after: datetime, before: datetime) -> list[BusyTime]:
    try:
        return busy_times(body, after, before)
    except NotICalendar as failure:
        raise RemoteError(f"The address does not give an iCalendar feed: {failure}.") from None
    except TooManyEvents as failure:
        raise RemoteError(f"The feed has {failure}.") from None


def _feed_name(body: bytes, url: str) -> str:
    for line in body[:65536].decode("utf-8", "replace").splitlines():
        if line.upper().startswith("X-WR-CALNAME:"):
            name = line.split(":", 1)[1].strip()
            if name:
                return _name(name.replace("\\,", ",").replace("\\;", ";"))
    return _host(url)


# --- reading ----------------------------------------------------------------


@dataclass(frozen=True)
class _Reading:
    """What one read of a source needs, copied out of the database before the network is touched."""

    kind: str
    secret: str = field(repr=False)  # the password or the feed URL
    server_url: str
    username: str
    remote_url: str
    after: datetime
    before: datetime
    guard: Guard


def open_secret(connection: Connection) -> str:
    """The connection's password or feed URL; AuthFailed when the app secret that sealed it is gone."""
    secret = _box().open(connection.secret, connection.key_id)
    if secret is None:
        raise AuthFailed("The stored password can no longer be read (the app secret changed): add it again.")
    return secret


def account_of(connection: Connection) -> caldav_source.Account:
    """The CalDAV account of a connection, its password opened."""
    return caldav_source.Account(
        connection.server_url or "", connection.username or "", open_secret(connection), guard_of(current_app)
    )


def _reading(source: ConnectedCalendar, now: datetime) -> _Reading:
    connection = source.connection
    days = db.session.scalar(
        sa.select(sa.func.max(Calendar.days_ahead))
        .join(CalendarSource, CalendarSource.calendar_id == Calendar.id)
        .where(CalendarSource.source_id == source.id)
    )
    return _Reading(
        kind=connection.kind,
        secret=open_secret(connection),
        server_url=connection.server_url or "",
        username=connection.username or "",
        remote_url=source.remote_url or "",
        # From yesterday to the farthest horizon of the calendars that use it.
        after=now - timedelta(days=1),
        before=now + timedelta(days=(days or 60) + 2),
        guard=guard_of(current_app),
    )


def _download(reading: _Reading) -> list[bytes]:
    """The source's iCalendar documents, from the network only (no database, no parsing): within a deadline."""
    if reading.kind == "ics":
        return [remote.read_feed(reading.secret, reading.guard)]
    account = caldav_source.Account(reading.server_url, reading.username, reading.secret, reading.guard)
    return caldav_source.events_between(account, reading.remote_url, reading.after, reading.before)


def _parse(reading: _Reading, documents: list[bytes]) -> list[BusyTime]:
    """The busy times of what was downloaded: OnceCal's own work, bounded by busy.MAX_BUSY_TIMES, not the deadline."""
    if reading.kind == "ics":
        return _feed_times(documents[0], reading.after, reading.before)
    if not documents:
        return []
    try:
        return busy_times(b"\r\n".join(documents), reading.after, reading.before)
    except (NotICalendar, TooManyEvents) as failure:
        raise RemoteError(f"The calendar's events cannot be read: {failure}.") from None


def _lease(source_id: int, held_if: sa.ColumnElement[bool]) -> datetime | None:
    """Set the source's read lease, from the clock, where ``held_if``; return it, or None where it did not hold."""
    lease = utcnow() + READ_LEASE  # from the clock, not a caller's ``now``: it may have read for a while
    with write_transaction():
        taken = (
            db.session.connection()
            .execute(
                sa.update(ConnectedCalendar)
                .where(ConnectedCalendar.id == source_id, held_if)
                .values(reading_until=lease)
            )
            .rowcount
        )
    return lease if taken else None


def _claim(source_id: int, now: datetime) -> datetime | None:
    """Take the source's read lease (the reader's mark), or None when another reader holds it."""
    return _lease(
        source_id, sa.or_(ConnectedCalendar.reading_until.is_(None), ConnectedCalendar.reading_until < now)
    )


def _renew(source_id: int, lease: datetime) -> datetime | None:
    """Extend this reader's lease; None when it has lost it."""
    return _lease(source_id, ConnectedCalendar.reading_until == lease)


def _held(source_id: int, lease: datetime) -> ConnectedCalendar | None:
    """The source, row-locked, if this reader's lease still holds it; call inside a write transaction."""
    query = sa.select(ConnectedCalendar).where(
        ConnectedCalendar.id == source_id, ConnectedCalendar.reading_until == lease
    )
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update()
    return db.session.scalar(query)


def _own_uids(owner_id: int, after: datetime) -> set[str]:
    """The UIDs of the owner's bookings that may be in a window from ``after``: never busy of their own."""
    refs = db.session.scalars(
        sa.select(Booking.ref)
        .join(Calendar, Calendar.id == Booking.calendar_id)
        .where(Calendar.owner_id == owner_id, Booking.end_at > after)
    )
    return {uid_of_ref(ref) for ref in refs}


def _record_good(source: ConnectedCalendar, times: Sequence[BusyTime], now: datetime) -> bool:
    own = _own_uids(source.connection.owner_id, now - timedelta(days=2))
    changed = busycopy.replace(source, [t for t in times if t.uid not in own])
    source.last_good_read_at = source.last_attempt_at = now
    source.error = source.error_kind = None
    source.failures = 0
    source.next_sync_at = now + SYNC_EVERY
    source.reading_until = None
    return changed


def _record_failure(source: ConnectedCalendar, failure: RemoteError, now: datetime) -> None:
    source.last_attempt_at = now
    source.error = str(failure)[:500]
    source.error_kind = "auth" if isinstance(failure, AuthFailed) else "fetch"
    source.failures += 1
    source.next_sync_at = now + BACKOFF[min(source.failures, len(BACKOFF)) - 1]
    source.reading_until = None


def sync_source(source_id: int, now: datetime | None = None) -> SyncResult:
    """Read one connected calendar now and keep what it says; a failure keeps the last good copy.

    Returns at once (skipped) when another reader holds it. What the read
    meets, whatever it raises, is recorded as that calendar's failure.
    """
    now = now or utcnow()
    lease = _claim(source_id, now)
    if lease is None:
        return SyncResult(False, False, "already being read", skipped=True)
    try:
        source = db.session.get(ConnectedCalendar, source_id)
        if source is None:
            return SyncResult(False, False, "removed")
        reading = _reading(source, now)
        db.session.rollback()  # no transaction stays open while the network answers
        documents = remote.within(reading.guard.deadline, _download, reading)
        renewed = _renew(source_id, lease)  # the parse gets a lease of its own
        if renewed is None:
            return SyncResult(False, False, "another read took over", skipped=True)
        lease = renewed
        times = _parse(reading, documents)
    except RemoteError as failure:
        problem = failure
    except Exception as failure:
        log.exception("reading connected calendar %s raised", source_id)
        problem = RemoteError(f"The calendar could not be read ({type(failure).__name__}).")
    else:
        db.session.rollback()
        with write_transaction():
            held = _held(source_id, lease)
            if held is None:
                return SyncResult(False, False, "another read took over", skipped=True)
            return SyncResult(True, _record_good(held, times, now))
    db.session.rollback()
    with write_transaction():
        held = _held(source_id, lease)
        if held is not None:
            _record_failure(held, problem, now)
    return SyncResult(False, False, str(problem))


def _free_to_read() -> sa.ColumnElement[bool]:
    """SQL: no reader holds the calendar now (its lease is none or ran out)."""
    now = sa.bindparam("now", type_=ConnectedCalendar.reading_until.type)
    return sa.or_(ConnectedCalendar.reading_until.is_(None), ConnectedCalendar.reading_until < now)


_DUE = (
    sa.select(ConnectedCalendar.id)
    .where(
        ConnectedCalendar.next_sync_at <= sa.bindparam("now", type_=ConnectedCalendar.next_sync_at.type),
        _free_to_read(),
    )
    .order_by(ConnectedCalendar.next_sync_at)
    .limit(1)
)


def sync_next_due(now: datetime) -> SyncResult | None:
    """Read the connected calendar whose turn it is, if any (the worker's sync lane)."""
    source_id = db.session.scalar(_DUE, {"now": now})
    db.session.rollback()
    if source_id is None:
        return None
    return sync_source(source_id, now)


_STALE = sa.select(ConnectedCalendar.id).where(
    ConnectedCalendar.id.in_(
        sa.select(CalendarSource.source_id).where(
            CalendarSource.calendar_id == sa.bindparam("calendar_id"), CalendarSource.checks.is_(True)
        )
    ),
    sa.or_(
        ConnectedCalendar.last_attempt_at.is_(None),
        ConnectedCalendar.last_attempt_at
        < sa.bindparam("stale_before", type_=ConnectedCalendar.last_attempt_at.type),
    ),
    _free_to_read(),
)


def refresh_stale(calendar: Calendar, now: datetime, wait: float = PAGE_WAIT_SECONDS) -> None:
    """Read the calendar's checked sources whose copy is older than 5 minutes first, waiting at most ``wait`` s.

    For booking pages. Each read runs on a thread of its own; what has not
    finished by then goes on and serves the next page, and this one shows
    the last good copy. A source another reader holds is skipped (one read
    per source at a time). When a read was started, the session's read
    transaction is ended and ``calendar`` read again: its busy_revision
    (the page cache's key) is then the newest.
    """
    if not calendar.checks_busy:
        return
    # Asked again within half a minute by this process: the answer is the same
    # (copies go stale by the 5 minutes), and a page is spared the query.
    looked = current_app.extensions.setdefault("oncecal.busy_looked_at", {})
    if calendar.id in looked and time.monotonic() - looked[calendar.id] < LOOK_AGAIN_AFTER:
        return
    looked[calendar.id] = time.monotonic()
    params = {"calendar_id": calendar.id, "stale_before": now - SYNC_EVERY, "now": now}
    stale = list(db.session.scalars(_STALE, params))
    if not stale:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    threads = [
        threading.Thread(target=_sync_in_app, args=(app, source_id), daemon=True) for source_id in stale
    ]
    for thread in threads:
        thread.start()
    deadline = utcnow() + timedelta(seconds=wait)
    for thread in threads:
        thread.join(max((deadline - utcnow()).total_seconds(), 0))
    db.session.rollback()  # ends the read transaction (nothing written), whose snapshot predates the refresh
    db.session.refresh(calendar)


def _sync_in_app(app: Flask, source_id: int) -> None:
    """A page's refresh, on its own thread: whatever it meets is logged, never raised into the void."""
    with app.app_context():
        try:
            sync_source(source_id)
        except Exception:
            log.exception("refreshing connected calendar %s raised", source_id)
        finally:
            db.session.remove()


# --- using ------------------------------------------------------------------


def owner_sources(owner_id: int) -> list[ConnectedCalendar]:
    """Every connected calendar of the owner's connections, by connection then calendar."""
    return list(
        db.session.scalars(
            sa.select(ConnectedCalendar)
            .join(Connection)
            .where(Connection.owner_id == owner_id)
            .order_by(Connection.id, ConnectedCalendar.id)
        )
    )


def source_label(source: ConnectedCalendar) -> str:
    """How the owner tells a connected calendar apart: its name and its server's host."""
    return f"{source.name} ({source.connection.host})"


def connections_of(owner_id: int) -> list[Connection]:
    return list(
        db.session.scalars(
            sa.select(Connection).where(Connection.owner_id == owner_id).order_by(Connection.id)
        )
    )


def connect_calendar(calendar: Calendar, check: Sequence[int], write: int | None) -> None:
    """Replace which connected calendars block ``calendar`` (``check``) and which receives its bookings (``write``).

    Raises ConnectionError_ for an id that is not one of the owner's
    connected calendars, or a ``write`` that cannot take events (a feed).
    """
    with write_transaction():
        mine = {source.id: source for source in owner_sources(calendar.owner_id)}
        unknown = sorted({*check, *([write] if write is not None else [])} - mine.keys())
        if unknown:
            raise ConnectionError_(
                f"No connected calendar {', '.join(map(str, unknown))} among this owner's."
            )
        if write is not None and not mine[write].writable:
            raise ConnectionError_(f"{mine[write].name} is a feed: bookings cannot be added to it.")
        db.session.execute(sa.delete(CalendarSource).where(CalendarSource.calendar_id == calendar.id))
        for source_id in sorted({*check, *([write] if write is not None else [])}):
            db.session.add(
                CalendarSource(
                    calendar_id=calendar.id,
                    source_id=source_id,
                    checks=source_id in check,
                    writes=source_id == write,
                )
            )
        db.session.execute(
            sa.update(Calendar)
            .where(Calendar.id == calendar.id)
            .values(checks_busy=bool(check), busy_revision=Calendar.busy_revision + 1)
        )
        if check:  # read soon: the copy may not reach as far ahead as this calendar offers
            db.session.execute(
                sa.update(ConnectedCalendar)
                .where(ConnectedCalendar.id.in_(check))
                .values(next_sync_at=utcnow())
            )


def sources_of(calendar: Calendar) -> tuple[list[int], int | None]:
    """The ids ``calendar`` checks for conflicts, and the one it writes to (or None)."""
    rows = db.session.scalars(
        sa.select(CalendarSource).where(CalendarSource.calendar_id == calendar.id)
    ).all()
    return sorted(r.source_id for r in rows if r.checks), next((r.source_id for r in rows if r.writes), None)


def target_of(calendar_id: int) -> int | None:
    """The connected calendar that receives ``calendar_id``'s bookings, or None."""
    return db.session.scalar(
        sa.select(CalendarSource.source_id).where(
            CalendarSource.calendar_id == calendar_id, CalendarSource.writes.is_(True)
        )
    )


def remove_connection(connection_id: int) -> None:
    """Remove a connection and, at once, its busy copies; events written into its calendars stay there."""
    with write_transaction():
        connection = db.session.get(Connection, connection_id)
        if connection is None:
            return
        source_ids = [source.id for source in connection.calendars]
        affected = list(
            db.session.scalars(
                sa.select(CalendarSource.calendar_id)
                .where(CalendarSource.source_id.in_(source_ids))
                .distinct()
            )
        )
        for source_id in source_ids:
            busycopy.raise_revisions(source_id)
        db.session.execute(sa.delete(CalendarSource).where(CalendarSource.source_id.in_(source_ids)))
        db.session.delete(connection)
        db.session.flush()
        still_checking = sa.exists().where(
            CalendarSource.calendar_id == Calendar.id, CalendarSource.checks.is_(True)
        )
        db.session.execute(
            sa.update(Calendar).where(Calendar.id.in_(affected)).values(checks_busy=still_checking)
        )


def calendars_using(source_ids: Sequence[int]) -> dict[int, list[tuple[str, bool, bool]]]:
    """For each connected calendar, the OnceCal calendars that use it: (name, checks, writes)."""
    used: dict[int, list[tuple[str, bool, bool]]] = {source_id: [] for source_id in source_ids}
    if not source_ids:
        return used
    rows = db.session.execute(
        sa.select(CalendarSource.source_id, Calendar.name, CalendarSource.checks, CalendarSource.writes)
        .join(Calendar, Calendar.id == CalendarSource.calendar_id)
        .where(CalendarSource.source_id.in_(source_ids), Calendar.archived_at.is_(None))
        .order_by(Calendar.name)
    )
    for source_id, name, checks, writes in rows:
        used[source_id].append((name, checks, writes))
    return used
