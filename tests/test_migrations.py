"""The migrations build exactly the schema the models describe, on both databases."""

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


def test_upgrade_matches_the_models_and_downgrade_empties(empty_database_url):
    app = make_test_app(empty_database_url)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
            assert diff == []
            tables = set(sa.inspect(conn).get_table_names())
        assert {"owners", "calendars", "one_time_links", "bookings"} <= tables
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as conn:
                constraint = conn.scalar(
                    sa.text(
                        "SELECT conname FROM pg_constraint WHERE contype = 'x' AND conname = 'bookings_no_overlap'"
                    )
                )
            assert constraint == "bookings_no_overlap"
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
