"""The migrations build exactly the schema the models describe, on both databases: from
empty to head, down to base (empty again), and up to head once more."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from oncecal.extensions import db
from tests.conftest import create_pg_database, drop_pg_database, make_test_app


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
        return
    admin = request.getfixturevalue("postgres_admin_url")
    url = create_pg_database(admin)
    yield url
    drop_pg_database(admin, url)


def _state(app) -> tuple[list, set[str], str | None]:
    """The difference from the models, the tables, and the exclusion constraint (PostgreSQL)."""
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        tables = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
        constraint = None
        if db.engine.dialect.name == "postgresql":
            constraint = conn.scalar(
                sa.text(
                    "SELECT conname FROM pg_constraint WHERE contype = 'x' AND conname = 'bookings_no_overlap'"
                )
            )
    return diff, tables, constraint


def test_upgrade_downgrade_upgrade(empty_database_url, proof):
    app = make_test_app(empty_database_url)
    model_tables = set(db.metadata.tables)
    postgres = empty_database_url.startswith("postgresql")
    with app.app_context():
        steps = []
        for step in ("upgrade", "downgrade", "upgrade again"):
            if step == "downgrade":
                downgrade(revision="base")
            else:
                upgrade()
            diff, tables, constraint = _state(app)
            if step == "downgrade":
                steps.append(f"{step}: {len(tables)} tables")
                assert tables == set()
            else:
                steps.append(
                    f"{step}: {len(tables)} tables, {len(diff)} differences"
                    + (f", {constraint}" if postgres else "")
                )
                assert diff == [] and tables == model_tables
                assert constraint == ("bookings_no_overlap" if postgres else None)
        db.engine.dispose()
    expected = [
        f"upgrade: {len(model_tables)} tables, 0 differences" + (", bookings_no_overlap" if postgres else ""),
        "downgrade: 0 tables",
        f"upgrade again: {len(model_tables)} tables, 0 differences"
        + (", bookings_no_overlap" if postgres else ""),
    ]
    proof.record(
        "migrations: empty → head → base → head",
        tried="flask-migrate upgrade, downgrade base, upgrade; compare with the models",
        expected="; ".join(expected),
        got="; ".join(steps),
    )
