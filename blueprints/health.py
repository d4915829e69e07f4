"""Liveness check for load balancers and monitors."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint

from oncecal.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    """Answer 200 when the database answers, 503 when it does not."""
    try:
        db.session.execute(sa.select(1))
    except sa.exc.OperationalError:
        db.session.rollback()
        return {"status": "unavailable"}, 503
    return {"status": "ok"}, 200
