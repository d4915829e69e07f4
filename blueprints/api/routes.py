"""API routes: authenticate the key, parse JSON, call a service, answer JSON."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Response, g, request
from pydantic import BaseModel, ValidationError

from blueprints.api import bp
from blueprints.api.problems import Problem, problem_response
from oncecal import schemas, text
from oncecal.app_objects import runtime
from oncecal.extensions import csrf, db
from oncecal.models import Booking, Calendar, OneTimeLink, utcnow
from oncecal.openapi import openapi_document, operation
from oncecal.schemas import IDEMPOTENCY_KEY_PATTERN, MAX_ID, parse_id
from oncecal.serializers import booking_json, calendar_json, link_json
from oncecal.services import apikeys, idempotency, links

csrf.exempt(bp)
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
Shape = TypeVar("Shape", bound=BaseModel)


def _json(data: Any, status: int = 200, **headers: str) -> Response:
    response = Response(json.dumps(data), status=status, mimetype="application/json")
    response.headers.update(headers)
    return response


@bp.errorhandler(Problem)
def _problem(problem: Problem) -> Response:
    db.session.rollback()
    return problem_response(problem.status, problem.detail, problem.errors)


def key_required(view: Callable[..., Response]) -> Callable[..., Response]:
    """Answer 401 unless the request carries a live API key."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        key = apikeys.authenticate(raw.strip(), utcnow()) if scheme.lower() == "bearer" else None
        if key is None:
            response = problem_response(401, "Send a valid API key as 'Authorization: Bearer <key>'.")
            response.headers["WWW-Authenticate"] = 'Bearer realm="oncecal"'
            return response
        g.api_key_id, g.owner_id = key.id, key.owner_id
        return view(*args, **kwargs)

    return wrapped


def _parsed(shape: type[Shape], data: Any, now: datetime | None = None) -> Shape:
    """Validate a request's body or query (a PageQuery) with its model; a 422 names every bad field."""
    try:
        return shape.model_validate(data, context={"now": now})
    except ValidationError as invalid:
        errors = schemas.field_errors(invalid, shape)
        query = issubclass(shape, schemas.PageQuery)
        detail = f"Invalid {', '.join(errors)}." if query else "The request body has invalid fields."
        raise Problem(422, detail, errors) from None


def _not_json_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); PostgreSQL refuses to store them.
    raise ValueError(f"{name} is not JSON")


def _body() -> Any:
    if not request.is_json:
        raise Problem(415, "Send the body as JSON with 'Content-Type: application/json'.")
    try:
        return json.loads(request.get_data(cache=True) or b"null", parse_constant=_not_json_constant)
    except (ValueError, RecursionError):
        raise Problem(400, "The body is not valid JSON.") from None


def _own_calendar(ref: str | int) -> Calendar:
    """The owner's live calendar by id or slug; an archived one is as unknown as another owner's."""
    query = sa.select(Calendar).where(Calendar.owner_id == g.owner_id, Calendar.archived_at.is_(None))
    if (calendar_id := parse_id(ref)) is not None:
        by_id = db.session.scalar(query.where(Calendar.id == calendar_id))
        if by_id is not None:
            return by_id
    slug = str(ref)
    # A slug never holds NUL or a lone surrogate, which the database would refuse to compare.
    calendar = None if text.one_line_fault(slug) else db.session.scalar(query.where(Calendar.slug == slug))
    if calendar is None:
        raise Problem(404, f"No calendar {ref!r} of yours.")
    return calendar


def _own_link(link_id: int) -> OneTimeLink:
    # An id past the column's range names no link (and would overflow the query).
    link = db.session.get(OneTimeLink, link_id) if link_id <= MAX_ID else None
    if link is None or link.calendar.owner_id != g.owner_id:
        raise Problem(404, f"No one-time link {link_id} of yours.")
    return link


def _cursor(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(value.encode() + b"==").decode()
        after = parse_id(decoded)
        if after is None:
            raise ValueError
        return after
    except (ValueError, UnicodeError):
        raise Problem(422, "Invalid cursor.", {"cursor": "use next_cursor from a previous page"}) from None


def _next_cursor(rows: list[Any], limit: int) -> str | None:
    if len(rows) <= limit:
        return None
    return base64.urlsafe_b64encode(str(rows[limit - 1].id).encode()).decode().rstrip("=")


@bp.post("/one-time-links")
@operation(
    "createOneTimeLink",
    body=schemas.LinkCreate,
    headers=schemas.IdempotencyHeader,
    answers={201: (schemas.Link, "The new link")},
    problems=(400, 401, 404, 413, 415, 422),
)
@key_required
def create_link() -> Response:
    """Create a one-time link

    An Idempotency-Key replays the first answer to the same key and body for 24 hours.
    """
    now = utcnow()
    body = _body()
    if not isinstance(body, dict):
        raise Problem(422, "The body must be a JSON object.", {"body": "must be a JSON object"})
    new = _parsed(schemas.LinkCreate, body, now)
    fields = new.link_fields(now)
    calendar = _own_calendar(new.calendar)
    key = request.headers.get("Idempotency-Key")
    if key is None:
        link, _token = links.issue_link(calendar, runtime().link_keys, now=now, source="api", **fields)
        return _json(link_json(link, now), 201)
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise Problem(
            422, "Invalid Idempotency-Key.", {"Idempotency-Key": "use 1 to 255 printable ASCII characters"}
        )
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    try:
        answer = idempotency.issue_link_once(
            calendar,
            runtime().link_keys,
            now,
            api_key_id=g.api_key_id,
            key=key,
            fingerprint=fingerprint,
            **fields,
        )
    except idempotency.KeyReused:
        raise Problem(
            422,
            "This Idempotency-Key was used with another body.",
            {"Idempotency-Key": "already used with another body"},
        ) from None
    return _json(answer.link, answer.status, **({"Idempotent-Replayed": "true"} if answer.replayed else {}))


@bp.get("/one-time-links")
@operation(
    "listOneTimeLinks",
    query=schemas.LinkQuery,
    answers={200: (schemas.LinkPage, "A page of links")},
    problems=(401, 404, 422),
)
@key_required
def list_links() -> Response:
    """List one-time links, newest first

    Filter by calendar, status or external_id; follow next_cursor for the next page.
    """
    now = utcnow()
    asked = _parsed(schemas.LinkQuery, request.args.to_dict())
    query = sa.select(OneTimeLink).join(Calendar).where(Calendar.owner_id == g.owner_id)
    if asked.calendar is not None:
        query = query.where(OneTimeLink.calendar_id == _own_calendar(asked.calendar).id)
    if asked.status is not None:
        query = query.where(links.status_clause(asked.status, now))
    if asked.external_id is not None:
        query = query.where(OneTimeLink.external_id == asked.external_id)
    if (after := _cursor(asked.cursor)) is not None:
        query = query.where(OneTimeLink.id < after)
    rows = list(db.session.scalars(query.order_by(OneTimeLink.id.desc()).limit(asked.limit + 1)))
    return _json(
        {
            "items": [link_json(link, now) for link in rows[: asked.limit]],
            "next_cursor": _next_cursor(rows, asked.limit),
        }
    )


@bp.get("/one-time-links/<int:link_id>")
@operation("getOneTimeLink", answers={200: (schemas.Link, "The link")}, problems=(401, 404))
@key_required
def get_link(link_id: int) -> Response:
    """Show a one-time link"""
    return _json(link_json(_own_link(link_id), utcnow()))


@bp.delete("/one-time-links/<int:link_id>")
@operation("revokeOneTimeLink", answers={200: (schemas.Link, "The revoked link")}, problems=(401, 404))
@key_required
def revoke_link(link_id: int) -> Response:
    """Revoke a one-time link

    Revoking twice is harmless; the link's page answers 410 from now on.
    """
    link = _own_link(link_id)
    now = utcnow()
    links.revoke_link(link.id, now)
    return _json(link_json(link, now))


@bp.get("/calendars")
@operation("listCalendars", answers={200: (schemas.CalendarList, "The calendars")}, problems=(401,))
@key_required
def list_calendars() -> Response:
    """List calendars"""
    rows = db.session.scalars(
        sa.select(Calendar)
        .where(Calendar.owner_id == g.owner_id, Calendar.archived_at.is_(None))
        .order_by(Calendar.id)
    )
    return _json({"items": [calendar_json(c) for c in rows]})


@bp.get("/bookings")
@operation(
    "listBookings",
    query=schemas.BookingQuery,
    answers={200: (schemas.BookingPage, "A page of bookings")},
    problems=(401, 404, 422),
)
@key_required
def list_bookings() -> Response:
    """List bookings, newest first

    Filter by calendar; follow next_cursor for the next page.
    """
    asked = _parsed(schemas.BookingQuery, request.args.to_dict())
    query = sa.select(Booking).join(Calendar).where(Calendar.owner_id == g.owner_id)
    if asked.calendar is not None:
        query = query.where(Booking.calendar_id == _own_calendar(asked.calendar).id)
    if (after := _cursor(asked.cursor)) is not None:
        query = query.where(Booking.id < after)
    rows = list(db.session.scalars(query.order_by(Booking.id.desc()).limit(asked.limit + 1)))
    return _json(
        {
            "items": [booking_json(b) for b in rows[: asked.limit]],
            "next_cursor": _next_cursor(rows, asked.limit),
        }
    )


@bp.get("/openapi.json")
@operation("getOpenApi", answers={200: (schemas.OpenApiDocument, "The OpenAPI document")}, public=True)
def openapi() -> Response:
    """This document, OpenAPI 3.1"""
    return _json(openapi_document())
