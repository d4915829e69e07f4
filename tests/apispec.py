"""Check real API responses against oncecal.openapi, the API's one source of truth.

Also the set-up the API tests share: an owner with a calendar and a key, and
booking a one-time link through its HTML form.

The document is validated as OpenAPI 3.1 once; each response must then have a
status and media type the document lists for its operation, and a body that
validates against that answer's schema, with $refs resolved in the document.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.test import TestResponse

from oncecal.extensions import db
from oncecal.models import Calendar, Owner, utcnow
from oncecal.openapi import openapi_document
from oncecal.services import apikeys
from tests.conftest import ALL_DAY
from tests.support.pages import BookingPage

# The link object's fields as PRODUCT.md lists them: written out, not read
# from oncecal.openapi, so that a change to the document cannot pass unseen.
LINK_FIELDS = {
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
}

DOCUMENT_URI = "urn:oncecal:openapi"
API_PREFIX = "/api/v1"


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document, checked against the OpenAPI 3.1 specification."""
    from app import create_app

    # servers[0] holds the base URL, which needs an app; any app gives the same shapes.
    app = create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "x" * 32})
    with app.app_context():
        doc = openapi_document()
    validate_spec(doc)
    return doc


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource(DOCUMENT_URI, Resource(contents=document(), specification=DRAFT202012))


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def validator_for(*pointer: str) -> Draft202012Validator:
    """A validator for the schema at a JSON pointer inside the document."""
    schema = {"$ref": f"{DOCUMENT_URI}#/{_pointer(*pointer)}"}
    return Draft202012Validator(
        schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def schema_validator(name: str) -> Draft202012Validator:
    """A validator for one of components/schemas."""
    return validator_for("components", "schemas", name)


def operation_path(path: str) -> str:
    """Return the document's path template that a request path (without /api/v1) matches."""
    for template in document()["paths"]:
        parts = re.split(r"(\{[^}]+\})", template)
        pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
        if re.fullmatch(pattern, path):
            return template
    raise AssertionError(f"{path} is not in the OpenAPI document")


def assert_conforms(response: TestResponse, method: str, path: str) -> Any:
    """Assert a response is one the document describes for ``method path``; return its JSON."""
    path = path.split("?", 1)[0].removeprefix(API_PREFIX)
    template = operation_path(path)
    operation = document()["paths"][template][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], (
        f"{method} {template} answered {status}, which the document does not list: {response.data[:300]!r}"
    )
    content = operation["responses"][status]["content"]
    assert response.mimetype in content, f"{method} {template} {status} answered {response.mimetype}"
    body = response.get_json()
    validator = validator_for(
        "paths", template, method.lower(), "responses", status, "content", response.mimetype, "schema"
    )
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method} {template} {status}: " + "; ".join(
        f"{list(e.absolute_path)}: {e.message}" for e in errors
    )
    return body


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    """Assert an RFC 9457 problem document with this status; return it."""
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    schema_validator("Problem").validate(body)
    assert body["status"] == status
    return body


@dataclass
class Account:
    """An owner with a calendar and a live API key, as plain values."""

    owner_id: int
    email: str
    key: str
    calendar_id: int
    slug: str


def seed_account(app: Flask, name: str = "olga") -> Account:
    """Add an owner with an always-open calendar ``<name>-call`` and an API key."""
    with app.app_context():
        owner = Owner(email=f"{name}@example.com", name=name.title(), password_hash="not-a-real-hash")
        calendar = Calendar(
            owner=owner,
            name=f"{name.title()}'s call",
            slug=f"{name}-call",
            weekly_hours=ALL_DAY,
            min_notice_minutes=0,
        )
        db.session.add_all([owner, calendar])
        db.session.commit()
        _key, raw = apikeys.create_api_key(owner, "tests", utcnow())
        return Account(owner.id, owner.email, raw, calendar.id, calendar.slug)


def book(client: FlaskClient, url: str, **fields: str) -> str:
    """Book the first free slot of a link through its HTML form; return the slot."""
    path = urlsplit(url).path
    page = BookingPage.parse(client.get(path).get_data(as_text=True))
    response = client.post(path, data=page.form(**fields))
    assert response.status_code == 303, response.status_code
    return page.slots[0]
