"""Calendar connections: add, sync, remove, and which connected calendars a OnceCal calendar uses.

A connection is a CalDAV account or an ICS feed; its calendars
(ConnectedCalendar) are read one at a time (``sync_source``): the network
first, outside any transaction, then the copy replaced in one short write
(oncecal.services.busycopy). A read that fails keeps the last good copy,
records the error and backs off. Secrets are sealed before they are stored
(oncecal.services.secretbox) and opened only to make a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, current_app

from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import (
    Booking,
    Calendar,
    CalendarSource,
    ConnectedCalendar,
    Connection,
    Owner,
    WrittenEvent,
    utcnow,
)
from oncecal.services import busycopy, caldav_source, remote
from oncecal.services.busy import BusyTime, NotICalendar, TooManyEvents, busy_times
from oncecal.services.ics import booking_ics, booking_uid, uid_of_ref
from oncecal.services.outbox import Outcome
from oncecal.services.remote import AuthFailed, Guard, RemoteError
from oncecal.services.secretbox import SecretBox

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
# How long a reader may hold a calendar before another may read it (it may have died).
READ_LEASE = timedelta(seconds=60)
# A page waits at most this long for a refresh of a stale copy; then the last good copy serves.
PAGE_WAIT_SECONDS = 1.5


class ConnectionError_(ValueError):
    """A connection cannot be made or used as asked: the text says why, for the owner."""


@dataclass(frozen=True)
class SyncResult:
    ok: bool
    changed: bool
    error: str | None = None


def guard_of(app: Flask) -> Guard:
    """The address rules of ONCECAL_CONNECTIONS_ALLOW_PRIVATE (and the tests' trusted addresses)."""
    allow = str(app.config.get("CONNECTIONS_ALLOW_PRIVATE", "")).lower() in ("1", "true", "yes")
    trusted = app.config.get("CONNECTIONS_TRUSTED_ADDRESSES") or ()
    timeout = float(app.config.get("CONNECTIONS_TIMEOUT_SECONDS") or remote.TIMEOUT_SECONDS)
    return Guard(allow_private=allow, trusted=frozenset(trusted), timeout=timeout)


def _box() -> SecretBox:
    from oncecal.app_objects import runtime

    return runtime().secrets


def _host(url: str) -> str:
    return (urlsplit(url).hostname or url)[:255]


def _window(source: ConnectedCalendar, now: datetime) -> tuple[datetime, datetime]:
    """The span a source is read for: from yesterday to the farthest horizon of the calendars that use it."""
    days = db.session.scalar(
        sa.select(sa.func.max(Calendar.days_ahead))
        .join(CalendarSource, CalendarSource.calendar_id == Calendar.id)
        .where(CalendarSource.source_id == source.id)
    )
    return now - timedelta(days=1), now + timedelta(days=(days or 60) + 2)


# --- adding -----------------------------------------------------------------


def add_caldav(owner: Owner, url: str, username: str, password: str, now: datetime) -> Connection:
    """Connect a CalDAV account: discover its calendars, store it (password sealed), read each once.

    Raises AuthFailed or RemoteError, storing nothing, when the login or the discovery fails.
    """
    account = caldav_source.Account(url.strip(), username, password, guard_of(current_app))
    service, found = caldav_source.discover(account)
    if not found:
        raise RemoteError("The account has no calendars with events.")
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
        ConnectedCalendar(remote_url=f.url, name=f.name, writable=True, next_sync_at=now) for f in found
    ]
    with write_transaction():
        db.session.add(connection)
    for source in connection.calendars:
        sync_source(source.id, now)
    return connection


def add_feed(owner: Owner, url: str, now: datetime) -> Connection:
    """Connect an ICS feed: read it once (it must be iCalendar), store it with its URL sealed.

    Raises RemoteError, storing nothing, when the feed cannot be read.
    """
    url = url.strip()
    if url.startswith("webcal://"):
        url = "https://" + url.removeprefix("webcal://")
    feed = remote.read_feed(url, guard_of(current_app))
    times = _feed_times(feed.body, now, now + timedelta(days=62))
    sealed = _box().seal(url)
    connection = Connection(
        owner_id=owner.id,
        kind="ics",
        host=_host(url),
        secret=sealed.token,
        key_id=sealed.key_id,
        created_at=now,
    )
    connection.calendars = [
        ConnectedCalendar(name=_feed_name(feed.body, url), writable=False, next_sync_at=now)
    ]
    with write_transaction():
        db.session.add(connection)
        source = connection.calendars[0]
        db.session.flush()
        _record_good(source, times, now)
    return connection


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
                return name[:200]
    return _host(url)


# --- reading ----------------------------------------------------------------


def _claim(source_id: int, now: datetime) -> ConnectedCalendar | None:
    """Take the source's read lease; None when another reader holds it (or the source is gone)."""
    with write_transaction():
        taken = (
            db.session.connection()
            .execute(
                sa.update(ConnectedCalendar)
                .where(
                    ConnectedCalendar.id == source_id,
                    sa.or_(ConnectedCalendar.reading_until.is_(None), ConnectedCalendar.reading_until < now),
                )
                .values(reading_until=now + READ_LEASE)
            )
            .rowcount
        )
    return db.session.get(ConnectedCalendar, source_id) if taken else None


def _read(source: ConnectedCalendar, now: datetime) -> list[BusyTime]:
    """Read a source's busy times from the network. Raises RemoteError (AuthFailed for a refused login)."""
    connection = source.connection
    secret = _box().open(connection.secret, connection.key_id)
    if secret is None:
        raise AuthFailed("The stored password can no longer be read (the app secret changed): add it again.")
    after, before = _window(source, now)
    guard = guard_of(current_app)
    if connection.kind == "ics":
        return _feed_times(remote.read_feed(secret, guard).body, after, before)
    account = caldav_source.Account(connection.server_url or "", connection.username or "", secret, guard)
    document = caldav_source.events_between(account, source.remote_url or "", after, before)
    if not document.strip():
        return []
    try:
        return busy_times(document, after, before)
    except (NotICalendar, TooManyEvents) as failure:
        raise RemoteError(f"The calendar's events cannot be read: {failure}.") from None


def _own_uids(owner_id: int, after: datetime) -> set[str]:
    """The UIDs of the owner's bookings that may be in a window from ``after``: never busy of their own."""
    refs = db.session.scalars(
        sa.select(Booking.ref)
        .join(Calendar, Calendar.id == Booking.calendar_id)
        .where(Calendar.owner_id == owner_id, Booking.end_at > after)
    )
    return {uid_of_ref(ref) for ref in refs}


def _record_good(source: ConnectedCalendar, times: Sequence[BusyTime], now: datetime) -> bool:
    owner_id = source.connection.owner_id
    own = _own_uids(owner_id, now - timedelta(days=2))
    kept = [t for t in times if t.uid not in own]
    changed = busycopy.replace(source, kept)
    source.last_good_read_at = source.last_attempt_at = now
    source.error = source.error_kind = None
    source.failures = 0
    source.next_sync_at = now + SYNC_EVERY
    source.reading_until = None
    return changed


def sync_source(source_id: int, now: datetime | None = None) -> SyncResult:
    """Read one connected calendar now and keep what it says; a failure keeps the last good copy.

    Returns at once (not ok, "already being read") when another reader holds it.
    """
    now = now or utcnow()
    source = _claim(source_id, now)
    if source is None:
        return SyncResult(False, False, "already being read")
    try:
        times = _read(source, now)
    except RemoteError as failure:
        db.session.rollback()
        with write_transaction():
            source = db.session.get_one(ConnectedCalendar, source_id)
            source.last_attempt_at = now
            source.error = str(failure)[:500]
            source.error_kind = "auth" if isinstance(failure, AuthFailed) else "fetch"
            source.failures += 1
            source.next_sync_at = now + BACKOFF[min(source.failures, len(BACKOFF)) - 1]
            source.reading_until = None
        return SyncResult(False, False, str(failure))
    db.session.rollback()  # the read transaction of the lookup: the network took its time
    with write_transaction():
        source = db.session.get_one(ConnectedCalendar, source_id)
        changed = _record_good(source, times, now)
    return SyncResult(True, changed)


_DUE = (
    sa.select(ConnectedCalendar.id)
    .where(ConnectedCalendar.next_sync_at <= sa.bindparam("now", type_=ConnectedCalendar.next_sync_at.type))
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
)


def refresh_stale(calendar_id: int, now: datetime, wait: float = PAGE_WAIT_SECONDS) -> bool:
    """Read the calendar's checked sources whose copy is older than 5 minutes, waiting at most ``wait`` seconds.

    Each read runs in a thread of its own; what has not finished by then
    goes on and serves the next page, and this one shows the last good copy.
    A source another reader holds is skipped (one read per source at a time).
    Returns whether any read was started.
    """
    stale = list(db.session.scalars(_STALE, {"calendar_id": calendar_id, "stale_before": now - SYNC_EVERY}))
    if not stale:
        return False
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    threads = [
        threading.Thread(target=_sync_in_app, args=(app, source_id), daemon=True) for source_id in stale
    ]
    for thread in threads:
        thread.start()
    deadline = wait
    for thread in threads:
        started = utcnow()
        thread.join(max(deadline, 0))
        deadline -= (utcnow() - started).total_seconds()
    return True


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
    mine = {source.id: source for source in owner_sources(calendar.owner_id)}
    unknown = sorted({*check, *([write] if write is not None else [])} - mine.keys())
    if unknown:
        raise ConnectionError_(f"No connected calendar {', '.join(map(str, unknown))} among this owner's.")
    if write is not None and not mine[write].writable:
        raise ConnectionError_(f"{mine[write].name} is a feed: bookings cannot be added to it.")
    with write_transaction():
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
        calendar.checks_busy = bool(check)
        calendar.busy_revision += 1
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
        for calendar_id in affected:
            still = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(CalendarSource)
                .where(CalendarSource.calendar_id == calendar_id, CalendarSource.checks.is_(True))
            )
            db.session.execute(
                sa.update(Calendar).where(Calendar.id == calendar_id).values(checks_busy=bool(still))
            )


def target_of(calendar_id: int) -> int | None:
    """The connected calendar that receives ``calendar_id``'s bookings, or None."""
    return db.session.scalar(
        sa.select(CalendarSource.source_id).where(
            CalendarSource.calendar_id == calendar_id, CalendarSource.writes.is_(True)
        )
    )


# --- writing bookings -------------------------------------------------------


def _account(connection: Connection) -> caldav_source.Account:
    secret = _box().open(connection.secret, connection.key_id)
    if secret is None:
        raise AuthFailed("The stored password can no longer be read (the app secret changed): add it again.")
    return caldav_source.Account(
        connection.server_url or "", connection.username or "", secret, guard_of(current_app)
    )


def write_back(booking_id: int, target_id: int, manage_url: str | None) -> Outcome:
    """Make the target calendar hold the booking as it is now: PUT it (made or moved), or DELETE it (cancelled).

    Every write-back of a booking converges on its present state, so their
    order does not matter. Never raises for the server's failures: the
    outbox retries what this reports.
    """
    started = time.monotonic()

    def outcome(status: int | None, error: str | None = None, *, permanent: bool = False) -> Outcome:
        return Outcome(status, error, int((time.monotonic() - started) * 1000), permanent=permanent)

    booking = db.session.get(Booking, booking_id)
    target = db.session.get(ConnectedCalendar, target_id)
    if booking is None or target is None or not target.remote_url:
        return outcome(None, "the booking or the calendar it was written to is gone", permanent=True)
    written = db.session.scalar(
        sa.select(WrittenEvent).where(
            WrittenEvent.booking_id == booking_id, WrittenEvent.target_id == target_id
        )
    )
    href = written.href if written else caldav_source.event_href(target.remote_url, booking_uid(booking))
    try:
        account = _account(target.connection)
        if booking.cancelled_at is not None:
            caldav_source.delete_event(account, href)
            etag, status = None, 204
        else:
            ics = booking_ics(booking, manage_url=manage_url, for_server=True)
            known = written.etag if written and written.deleted_at is None else None
            try:
                etag = caldav_source.put_event(account, href, ics, known)
            except caldav_source.EventChanged:
                # Written before (a try whose answer was lost), or edited there since: write it again over it.
                try:
                    current = caldav_source.current_etag(account, href)
                except caldav_source.EventGone:
                    current = None
                etag = caldav_source.put_event(account, href, ics, current)
            status = 201 if known is None else 204
    except RemoteError as failure:
        db.session.rollback()
        return outcome(None, str(failure)[:500])
    cancelled = booking.cancelled_at is not None
    with write_transaction():
        row = db.session.scalar(
            sa.select(WrittenEvent).where(
                WrittenEvent.booking_id == booking_id, WrittenEvent.target_id == target_id
            )
        )
        if row is None:
            row = WrittenEvent(booking_id=booking_id, target_id=target_id, href=href)
            db.session.add(row)
        row.etag = etag
        row.deleted_at = utcnow() if cancelled else None
    return outcome(status)


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
