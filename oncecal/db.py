"""Engine set-up and the write transaction that booking relies on."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import ORMExecuteState, Session

from oncecal.extensions import db

_IMMEDIATE = "oncecal_begin_immediate"
_WRITING = "oncecal_write_transaction"
# Set when the session writes outside write_transaction (a flush, an INSERT,
# UPDATE or DELETE): end_session then rolls that transaction back.
_WROTE = "oncecal_wrote_outside_a_write_transaction"


@sa.event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _context: Any) -> None:
    if not session.info.get(_WRITING):
        session.info[_WROTE] = True


@sa.event.listens_for(Session, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> None:
    if not state.is_select and not state.session.info.get(_WRITING):
        state.session.info[_WROTE] = True


def configure_engine(engine: sa.Engine, *, busy_timeout_ms: int) -> None:
    """Give SQLite WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE on demand."""
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself, so "begin" below decides its kind.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching a new file to WAL takes an
        # exclusive lock, and another process may be opening it too.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(*, after_reads: bool = False) -> Iterator[None]:
    """Run the block in one transaction that holds the write lock from its start.

    On SQLite this is ``BEGIN IMMEDIATE``: checks made inside the block
    cannot be invalidated by another writer before the commit. PostgreSQL
    needs no special start; its row locks and constraints do the work.

    A transaction the request has open is committed first, and what it
    loaded is expired. ``after_reads`` is for a block that follows reads
    only (nothing written, not even flushed) and takes its checks from its
    own statements, not from the objects read: those stay loaded, and the
    block keeps the connection the reads used. On PostgreSQL (READ
    COMMITTED, pinned in config.py: each statement sees what is committed
    when it starts) it goes on in the open transaction; on SQLite that read
    transaction is ended and an IMMEDIATE one begun on the same connection.

    Every write goes through here (requests, the CLI, the worker): on SQLite
    a deferred transaction that has read cannot wait for the lock it then
    needs to write, and fails at once with "database is locked". A block
    inside another write transaction joins it; the outer one commits.
    """
    session = db.session()
    if session.info.get(_WRITING):
        yield
        return
    go_on = after_reads and session.in_transaction() and not (session.new or session.dirty or session.deleted)
    if session.in_transaction() and not go_on:
        # A deferred read transaction cannot be upgraded safely under WAL.
        session.commit()
    with _queue_for_sqlite_writes(db.engine):
        session.info[_WRITING] = True
        try:
            if not go_on:
                session.connection(execution_options={_IMMEDIATE: True})
            elif db.engine.dialect.name == "sqlite":
                # SQLAlchemy sees one transaction go on (the statements are its
                # to run, and its errors are its own, e.g. a lock wait that
                # timed out): it commits or rolls back the IMMEDIATE one as its own.
                connection = session.connection()
                connection.exec_driver_sql("COMMIT")
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.info.pop(_WRITING, None)


def end_session(*, failed: bool) -> None:
    """Close the session at a request's end: a transaction that only read commits, any other rolls back.

    COMMIT, not ROLLBACK, for reads: psycopg forgets its prepared statements
    at every rollback, so on PostgreSQL each page load would plan its
    queries afresh (the link look-up's three-table join: 0.25 ms of
    planning, more than it takes to run; ending a page's reads with COMMIT
    made the look-up 0.5 ms faster in-process). Writes end in
    write_transaction, which commits or rolls back itself; a transaction
    that wrote outside it (a flush, an INSERT, UPDATE or DELETE), holds
    pending changes, or ends a failed request rolls back, as every one did.
    """
    session = db.session()
    reads = session.get_transaction()
    wrote = session.info.pop(_WROTE, False)
    if (
        not failed
        and not wrote
        and reads is not None
        and reads.is_active
        and not (session.new or session.dirty or session.deleted)
    ):
        # What was read stays readable after the close, as it did when closing rolled back.
        expiring, session.expire_on_commit = session.expire_on_commit, False
        try:
            session.commit()
        finally:
            session.expire_on_commit = expiring
    db.session.remove()


def immediate_connection(engine: sa.Engine) -> sa.Connection:
    """Return a connection whose transactions take the write lock from their start (for migrations)."""
    return engine.connect().execution_options(**{_IMMEDIATE: True})


class _Held(threading.local):
    depth = 0  # 1 while this thread holds the writer lock file


_held = _Held()


@contextmanager
def _queue_for_sqlite_writes(engine: sa.Engine) -> Iterator[None]:
    """On a SQLite file, wait for the writer before us on a lock file, not in SQLite's busy handler.

    SQLite's busy handler polls with sleeps of up to 100 ms, so a waiting
    writer often sleeps on after the lock is free (py-spy on ``make bench``'s
    POSTs: 35-45 % of the workers' time inside BEGIN IMMEDIATE, and a p99
    three times PostgreSQL's). An exclusive ``flock`` wakes the next writer
    as soon as the previous one is done. BEGIN IMMEDIATE stays the
    guarantee; this only decides who goes next, and a writer that does not
    take this lock (a migration) still just waits in SQLite. Each use
    opens its own file description, so threads of one process queue too.
    """
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:") or _held.depth:
        yield
        return
    fd = os.open(f"{path}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
