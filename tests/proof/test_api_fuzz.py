"""Schemathesis drives every API operation in-process from the document it serves at /api/v1/openapi.json.

Each operation gets valid and invalid requests (the coverage and fuzzing
phases, positive and negative data), sent with a real API key. Every answer
must not be a 5xx, must use a status code and media type the document lists,
and must match the document's schema. It runs on SQLite and on PostgreSQL. The data set holds a calendar with
bookings and links, and the generated requests are steered towards its
slug, id and link ids half of the time, so 2xx answers are checked too.

Each operation records a proof row: how many requests were sent (and how
many held NUL or lone surrogates) and how many answered 5xx. Fuzzed examples
per operation come from proof.scale (SCHEMATHESIS_MAX_EXAMPLES overrides).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
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
from tests.proof.report import Proof

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Fuzzed examples per operation; the coverage phase adds its own fixed cases.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES") or Proof.scale(40, 500))


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


def spiked(value: Any, spikes: st.SearchStrategy[str]) -> st.SearchStrategy:
    """``value`` with one of its strings (or one scalar) given a spike."""
    if isinstance(value, dict) and value:
        return st.sampled_from(sorted(value, key=str)).flatmap(
            lambda key: spiked(value[key], spikes).map(lambda new: {**value, key: new})
        )
    if isinstance(value, list) and value:
        return st.integers(0, len(value) - 1).flatmap(
            lambda i: spiked(value[i], spikes).map(lambda new: [*value[:i], new, *value[i + 1 :]])
        )
    if isinstance(value, str):
        return st.tuples(st.integers(0, len(value)), spikes).map(
            lambda p: value[: p[0]] + p[1] + value[p[0] :]
        )
    return spikes


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
    # Schemathesis sends only UTF-8-encodable text: a quarter of the bodies get
    # a NUL or a lone surrogate spliced in, queries and paths a NUL.
    text_spikes = st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "\ud83d"])
    nul_spikes = st.sampled_from(["\x00", "a\x00b", "%00"])

    @schema.hook
    def flatmap_body(_context: schemathesis.HookContext, body: Any) -> st.SearchStrategy:
        if not isinstance(body, dict):
            return st.just(body)
        ours = st.just(body)
        if "calendar" in body:
            ours = st.one_of(ours, calendars.map(lambda ref: {**body, "calendar": ref}))
        return st.one_of(ours, ours, ours, ours.flatmap(lambda b: spiked(b, text_spikes)))

    @schema.hook
    def flatmap_query(_context: schemathesis.HookContext, query: Any) -> st.SearchStrategy:
        if not isinstance(query, dict):
            return st.just(query)
        ours = st.just(query)
        if "calendar" in query:
            ours = st.one_of(ours, calendars.map(lambda ref: {**query, "calendar": ref}))
        return st.one_of(ours, ours, ours, ours.flatmap(lambda q: spiked(q, nul_spikes)))

    @schema.hook
    def flatmap_path_parameters(_context: schemathesis.HookContext, path: Any) -> st.SearchStrategy:
        if isinstance(path, dict) and "link_id" in path:
            known = st.sampled_from(seeded["link_ids"]).map(lambda link_id: {**path, "link_id": link_id})
            return st.one_of(st.just(path), known, nul_spikes.map(lambda s: {**path, "link_id": f"1{s}"}))
        return st.just(path)

    return schema


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # Schemathesis 4.32's lazy schemas read and write Node._nodeid (to name
    # each operation's subtest), which pytest 9.2 no longer has.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


@pytest.fixture
def api_tally(proof: Proof) -> Iterator[dict[str, Counter[str]]]:
    """Count what each operation was sent and answered; record a proof row per operation."""
    tallies: dict[str, Counter[str]] = {}
    yield tallies
    for operation, tally in sorted(tallies.items()):
        statuses = " ".join(
            f"{k.split()[1]}×{n}" for k, n in sorted(tally.items()) if k.startswith("status ")
        )
        proof.record(
            f"schemathesis: {operation}",
            tried=f"{tally['sent']} requests from the OpenAPI document, valid and invalid "
            f"({tally['nul']} with NUL, {tally['surrogate']} with lone surrogates)",
            expected="0 × 5xx, every answer as documented",
            got=f"{tally['5xx']} × 5xx ({statuses})",
            ok=tally["5xx"] == 0 and tally["sent"] > 0,
        )


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
def test_the_api_conforms_to_its_document(
    case: schemathesis.Case, api_tally: dict[str, Counter[str]]
) -> None:
    tally = api_tally.setdefault(f"{case.operation.method.upper()} {case.operation.path}", Counter())
    sent = list(_strings([case.path_parameters, case.query, case.headers, case.body]))
    tally["sent"] += 1
    tally["nul"] += any("\x00" in text for text in sent)
    tally["surrogate"] += any(0xD800 <= ord(ch) <= 0xDFFF for text in sent for ch in text)
    response = case.call()
    tally[f"status {response.status_code}"] += 1
    tally["5xx"] += response.status_code >= 500
    case.validate_response(response, checks=CHECKS)
