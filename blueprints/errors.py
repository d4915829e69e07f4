"""Error pages: HTML for browsers, problem+json for API clients."""

from __future__ import annotations

import json
import logging

import sqlalchemy as sa
from flask import Blueprint, Response, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from oncecal.db import end_session
from oncecal.extensions import db
from oncecal.flow import flow_args
from oncecal.schemas import PROBLEM_TITLES

bp = Blueprint("errors", __name__)
log = logging.getLogger("oncecal.errors")

TITLES = {
    400: "That request could not be understood",
    403: "This page can't be shown here",
    404: "Page not found",
    405: "Not allowed",
    410: "This link has expired",
    413: "That was too much data",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "We are briefly unavailable",
}

MESSAGES = {
    404: "The link may be mistyped or incomplete. Check the address, or ask the person who sent it for a new one.",
    429: "There were too many attempts from your connection. Please wait a moment and try again.",
    500: "Nothing was booked or changed. Please try again in a moment.",
    503: "Nothing was booked or changed. Please try again in a moment.",
}


def _wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response | tuple[str, int]:
    """Render an HTTP error for whoever asked."""
    if isinstance(error, InternalServerError):
        db.session.rollback()
    code = error.code or 500
    detail = MESSAGES.get(code) or error.description or ""
    if _wants_json():
        # The same titles as the API's own problems (oncecal/schemas.py).
        title = PROBLEM_TITLES.get(code, error.name)
        response = Response(
            json.dumps({"type": "about:blank", "title": title, "status": code, "detail": detail}),
            status=code,
            mimetype="application/problem+json",
        )
    else:
        title = TITLES.get(code, error.name)
        page = render_template("error.html", code=code, title=title, detail=detail, flow=flow_args())
        response = Response(page, status=code)
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


@bp.app_errorhandler(sa.exc.OperationalError)
def database_unavailable(error: sa.exc.OperationalError) -> Response | tuple[str, int]:
    """Answer 503 when the database is locked, restarting or unreachable."""
    db.session.rollback()
    return http_error(ServiceUnavailable(retry_after=2))


def close_session(error: BaseException | None) -> None:
    """End the app context's session before Flask-SQLAlchemy does; a dropped connection is no 500.

    The answer is made by now. When the database went away meanwhile (a
    PostgreSQL restart), ending the transaction fails; the connection is
    already discarded, so log it and close again instead of answering 500.
    So for any other error of the COMMIT that ends a request's reads.
    """
    try:
        end_session(failed=error is not None)
    except sa.exc.SQLAlchemyError as lost:
        log.warning("the session's transaction could not end cleanly: %s", getattr(lost, "orig", lost))
        db.session.remove()


def _register_close_session(state: BlueprintSetupState) -> None:
    state.app.teardown_appcontext(close_session)


# Registered after Flask-SQLAlchemy's own teardown (db.init_app comes first
# in create_app), so it runs before it: teardowns run in reverse order.
bp.record_once(_register_close_session)
