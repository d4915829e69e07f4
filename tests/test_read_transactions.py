"""A request that only read ends its transaction with COMMIT; anything else rolls back (oncecal.db.end_session)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Calendar, Owner, utcnow
from oncecal.services import links
from tests.apispec import seed_account


def _link_token(app: Flask) -> str:
    account = seed_account(app)
    with app.app_context():
        calendar = db.session.get_one(Calendar, account.calendar_id)
        return links.issue_link(calendar, runtime().link_keys, now=utcnow())[1]


def test_page_loads_keep_postgresqls_prepared_statements(any_app: Flask) -> None:
    # psycopg forgets its prepared statements at every ROLLBACK: ended with one,
    # each page load would plan the link look-up afresh.
    token = _link_token(any_app)
    client = any_app.test_client()
    for _ in range(8):
        assert client.get(f"/l/{token}").status_code == 200
    with any_app.app_context():
        if db.engine.dialect.name != "postgresql":
            return
        prepared = db.session.scalars(sa.text("SELECT statement FROM pg_prepared_statements")).all()
    assert any("one_time_links.token_hash" in statement for statement in prepared), prepared


def test_what_was_written_outside_a_write_transaction_is_not_committed(any_app: Flask) -> None:
    from oncecal.db import end_session

    def stray(email: str) -> Owner:
        return Owner(email=email, name="Stray", password_hash="x")

    with any_app.app_context():  # pending
        db.session.scalar(sa.select(sa.func.count()).select_from(Owner))
        db.session.add(stray("pending@example.com"))
        end_session(failed=False)
    with any_app.app_context():  # flushed by a query's autoflush
        db.session.add(stray("flushed@example.com"))
        db.session.scalar(sa.select(sa.func.count()).select_from(Owner))
        end_session(failed=False)
    with any_app.app_context():  # a statement of its own
        db.session.execute(sa.insert(Owner).values(email="inserted@example.com", name="I", password_hash="x"))
        end_session(failed=False)
    with any_app.app_context():  # a failed request
        db.session.execute(sa.select(Owner.id))
        end_session(failed=True)
    with any_app.app_context():
        assert db.session.scalars(sa.select(Owner.email)).all() == []


def test_rows_read_in_a_context_stay_readable_after_it(any_app: Flask) -> None:
    seed_account(any_app)
    with any_app.app_context():
        owner = db.session.scalars(sa.select(Owner)).one()
    assert owner.email == "olga@example.com"  # loaded, not expired by the closing commit
