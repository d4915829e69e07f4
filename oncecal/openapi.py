"""The OpenAPI 3.1 description of /api/v1: the one source of truth for its shapes.

Tests validate this document and check real responses against it, and
schemathesis drives the API from it.
"""

from __future__ import annotations

from typing import Any

from oncecal.services.links import MAX_EXPIRY
from oncecal.text import NOT_ONE_LINE
from oncecal.urls import api_url

# Ids are INTEGER columns: a larger number names no row, and would overflow
# the database's integer type rather than find nothing.
MAX_ID = 2**31 - 1


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


DATETIME = {"type": "string", "format": "date-time"}
# 1 to 255 printable ASCII characters (a UUID, say).
IDEMPOTENCY_KEY_PATTERN = "^[\\u0020-\\u007e]{1,255}$"
# Text fields are one line: no control characters, line breaks or tabs (oncecal/text.py).
TEXT_PATTERN = f"^[^{NOT_ONE_LINE}]*$"


def _text(max_length: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, "pattern": TEXT_PATTERN, **extra}


SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "Booking": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "ref",
            "calendar",
            "link_id",
            "start",
            "end",
            "timezone",
            "invitee",
            "created_at",
            "cancelled_at",
        ],
        "properties": {
            "ref": {"type": "string"},
            "calendar": {"type": "string"},
            "link_id": _nullable("integer"),
            "start": DATETIME,
            "end": DATETIME,
            "timezone": {"type": "string"},
            "invitee": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "email"],
                "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
            },
            "created_at": DATETIME,
            "cancelled_at": _nullable("string", format="date-time"),
        },
    },
    "Link": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "id",
            "calendar",
            "url",
            "label",
            "status",
            "uses",
            "max_uses",
            "expires_at",
            "created_at",
            "external_id",
            "metadata",
            "prefill",
            "booking",
        ],
        "properties": {
            "id": {"type": "integer"},
            "calendar": {"type": "string", "description": "The calendar's slug."},
            "url": _nullable("string", description="The one-time link; null once its secret is retired."),
            "label": _nullable("string"),
            "status": {"type": "string", "enum": ["active", "used", "expired", "revoked"]},
            "uses": {"type": "integer", "minimum": 0},
            "max_uses": {"type": "integer", "minimum": 1, "maximum": 1000},
            "expires_at": _nullable("string", format="date-time"),
            "created_at": DATETIME,
            "external_id": _nullable("string"),
            "metadata": _nullable("object"),
            "prefill": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "email"],
                "properties": {"name": _nullable("string"), "email": _nullable("string")},
            },
            "booking": {"oneOf": [{"$ref": "#/components/schemas/Booking"}, {"type": "null"}]},
        },
    },
    "LinkCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["calendar"],
        "dependentSchemas": {"expires_at": {"not": {"required": ["expires_in"]}}},
        "properties": {
            "calendar": {
                "oneOf": [
                    _text(80, minLength=1),
                    {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                ],
                "description": "The calendar's slug or id.",
            },
            "label": _text(200),
            "expires_at": {
                "type": "string",
                "format": "date-time",
                "description": "A future instant, at most 10 years (3,653 days) ahead; give this or expires_in, not both.",
            },
            "expires_in": {
                "type": "integer",
                "minimum": 1,
                "maximum": int(MAX_EXPIRY.total_seconds()),
                "description": "Seconds from now, at most 10 years; give this or expires_at, not both.",
            },
            "max_uses": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
            "prefill": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": _text(120),
                    "email": _text(254, format="email"),
                },
            },
            "external_id": _text(200, description="Your contact's id."),
            "metadata": {
                "type": "object",
                "description": (
                    "Up to 4 KB of JSON, nested at most 32 levels deep, without control characters "
                    "in its strings; passed to webhooks."
                ),
            },
        },
    },
    "Calendar": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "id",
            "slug",
            "name",
            "timezone",
            "duration_minutes",
            "public_page_enabled",
            "scheduling_url",
            "permanent_url",
        ],
        "properties": {
            "id": {"type": "integer"},
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "timezone": {"type": "string"},
            "duration_minutes": {"type": "integer"},
            "public_page_enabled": {"type": "boolean"},
            "scheduling_url": _nullable("string"),
            "permanent_url": _nullable("string"),
        },
    },
}


def _list_of(ref: str, paged: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}
    }
    required = ["items"]
    if paged:
        properties["next_cursor"] = _nullable("string")
        required.append("next_cursor")
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


def _answer(description: str, schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


def _problems(*codes: int) -> dict[str, Any]:
    text = {
        400: "The body is not valid JSON",
        401: "No valid API key",
        404: "Unknown, or another owner's",
        413: "The body is too large",
        415: "The body is not JSON",
        422: "Invalid input; errors names each field",
    }
    return {
        str(c): _answer(text[c], {"$ref": "#/components/schemas/Problem"}, "application/problem+json")
        for c in codes
    }


LINK = {"$ref": "#/components/schemas/Link"}
CURSOR = {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}}
LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 100},
}
CALENDAR_FILTER = {
    "name": "calendar",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "A calendar slug or id.",
}
LINK_ID = {
    "name": "link_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
}


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the API."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OnceCal API",
            "version": "1.0.0",
            "description": "Create, list and revoke one-time booking links; read calendars and bookings.",
        },
        "servers": [{"url": api_url()}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from the dashboard or `flask apikey create`.",
                }
            },
            "schemas": SCHEMAS,
        },
        "paths": {
            "/one-time-links": {
                "post": {
                    "operationId": "createOneTimeLink",
                    "summary": "Create a one-time link",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": 255,
                                "pattern": IDEMPOTENCY_KEY_PATTERN,
                            },
                            "description": (
                                "1 to 255 printable ASCII characters. The same key and body replay "
                                "the first answer for 24 hours; another body with the key is a 422."
                            ),
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/LinkCreate"}}
                        },
                    },
                    "responses": {
                        "201": _answer("The new link", LINK),
                        **_problems(400, 401, 404, 413, 415, 422),
                    },
                },
                "get": {
                    "operationId": "listOneTimeLinks",
                    "summary": "List one-time links, newest first",
                    "parameters": [
                        CALENDAR_FILTER,
                        {
                            "name": "status",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["active", "used", "expired", "revoked"]},
                        },
                        {
                            "name": "external_id",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                        CURSOR,
                        LIMIT,
                    ],
                    "responses": {
                        "200": _answer("A page of links", _list_of("Link", paged=True)),
                        **_problems(401, 404, 422),
                    },
                },
            },
            "/one-time-links/{link_id}": {
                "parameters": [LINK_ID],
                "get": {
                    "operationId": "getOneTimeLink",
                    "summary": "Show a one-time link",
                    "responses": {"200": _answer("The link", LINK), **_problems(401, 404)},
                },
                "delete": {
                    "operationId": "revokeOneTimeLink",
                    "summary": "Revoke a one-time link",
                    "responses": {"200": _answer("The revoked link", LINK), **_problems(401, 404)},
                },
            },
            "/calendars": {
                "get": {
                    "operationId": "listCalendars",
                    "summary": "List calendars",
                    "responses": {
                        "200": _answer("The calendars", _list_of("Calendar", paged=False)),
                        **_problems(401),
                    },
                }
            },
            "/bookings": {
                "get": {
                    "operationId": "listBookings",
                    "summary": "List bookings, newest first",
                    "parameters": [CALENDAR_FILTER, CURSOR, LIMIT],
                    "responses": {
                        "200": _answer("A page of bookings", _list_of("Booking", paged=True)),
                        **_problems(401, 404, 422),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
    }
