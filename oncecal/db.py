"""Engine set-up and the write transaction that booking relies on."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from oncecal.extensions import db

_IMMEDIATE = "oncecal_begin_immediate"


def configure_engine(engine: sa.Engine, *, busy_timeout_ms: int) -> None:
    """Give SQLite WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE on demand."""
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself, so "begin" below decides its kind.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction() -> Iterator[None]:
    """Run the block in one transaction that holds the write lock from its start.

    On SQLite this is ``BEGIN IMMEDIATE``: checks made inside the block
    cannot be invalidated by another writer before the commit. PostgreSQL
    needs no special start; its row locks and constraints do the work.
    """
    session = db.session()
    if session.in_transaction():
        # A deferred read transaction cannot be upgraded safely under WAL.
        session.commit()
    session.connection(execution_options={_IMMEDIATE: True})
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise
