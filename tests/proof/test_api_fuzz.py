"""Schemathesis drives the API in-process from the document it serves at /api/v1/openapi.json.

Each operation gets valid and invalid requests (the coverage and fuzzing
phases, positive and negative data), sent with a real API key. Every answer
must not be a 5xx, must use a status code and media type the document lists,
and must match the document's schema. It runs on SQLite and on PostgreSQL. The data set holds a calendar with
bookings and links, and the generated requests are steered towards its
slug, id and link ids half of the time, so 2xx answers are checked too.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.apispec import book, seed_account

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Fuzzed examples per operation; the coverage phase adds its own fixed cases.
# SCHEMATHESIS_MAX_EXAMPLES=1000 makes a deeper (slower) run by hand.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "40"))


def _seed(app: Flask) -> dict[str, Any]:
    account = seed_account(app)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {account.key}"}
    link_ids = []
    for i in range(4):
        response = client.post(
            "/api/v1/one-time-links",
            json={"calendar": account.slug, "external_id": f"crm-{i}", "metadata": {"n": i}},
            headers=headers,
        )
        assert response.status_code == 201
        link = response.get_json()
        link_ids.append(link["id"])
        if i < 2:
            book(client, link["url"])
    return {
        "key": account.key,
        "slug": account.slug,
        "calendar_id": account.calendar_id,
        "link_ids": link_ids,
    }


@pytest.fixture
def api_schema(any_app: Flask) -> schemathesis.BaseSchema:
    """The schema as the app serves it, on SQLite and on PostgreSQL (stricter: NUL, integer ranges)."""
    app = any_app
    seeded = _seed(app)
    config = schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
            "phases": {"stateful": {"enabled": False}},
            "auth": {"openapi": {"bearer": {"bearer": seeded["key"]}}},
            # The in-process WSGI transport does not undo Content-Encoding.
            "headers": {"Accept-Encoding": "identity"},
            "seed": 20261201,
        }
    )
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)
    calendars = st.sampled_from([seeded["slug"], str(seeded["calendar_id"])])

    @schema.hook
    def flatmap_body(_context: schemathesis.HookContext, body: Any) -> st.SearchStrategy:
        if isinstance(body, dict) and "calendar" in body:
            return st.one_of(st.just(body), calendars.map(lambda ref: {**body, "calendar": ref}))
        return st.just(body)

    @schema.hook
    def flatmap_query(_context: schemathesis.HookContext, query: Any) -> st.SearchStrategy:
        if isinstance(query, dict) and "calendar" in query:
            return st.one_of(st.just(query), calendars.map(lambda ref: {**query, "calendar": ref}))
        return st.just(query)

    @schema.hook
    def flatmap_path_parameters(_context: schemathesis.HookContext, path: Any) -> st.SearchStrategy:
        if isinstance(path, dict) and "link_id" in path:
            known = st.sampled_from(seeded["link_ids"]).map(lambda link_id: {**path, "link_id": link_id})
            return st.one_of(st.just(path), known)
        return st.just(path)

    return schema


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # Schemathesis 4.32's lazy schemas read and write Node._nodeid (to name
    # each operation's subtest), which pytest 9.2 no longer has.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_the_api_conforms_to_its_document(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
