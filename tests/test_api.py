"""The JSON API through the Flask test client: every endpoint, status code and field.

Every answer of the API in these tests is checked against oncecal.openapi
(tests/apispec.py): a status and media type the document lists, and a body
that validates against the document's schema for it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import ApiKey, Calendar, IdempotentRequest, OneTimeLink, Owner, utcnow
from oncecal.services import apikeys, links
from tests.apispec import (
    LINK_FIELDS,
    Account,
    assert_conforms,
    assert_problem,
    book,
    document,
    schema_validator,
    seed_account,
)
from tests.conftest import ALL_DAY
from tests.support.apps import make_test_app

API = "/api/v1"


class Api:
    """The test client with a bearer key; checks every answer against the OpenAPI document."""

    def __init__(self, client: FlaskClient, key: str | None) -> None:
        self.client = client
        self.key = key

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = "default",
        headers: dict[str, str] | None = None,
        **kw,
    ) -> TestResponse:
        key = self.key if key == "default" else key
        sent = {**({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
        response = self.client.open(API + path, method=method, headers=sent, **kw)
        assert_conforms(response, method, path)
        return response

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> TestResponse:
        return self.call("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> TestResponse:
        return self.call("DELETE", path, **kw)

    def create(self, status: int = 201, **body: Any) -> dict[str, Any]:
        response = self.post("/one-time-links", json=body)
        assert response.status_code == status, response.get_json()
        return response.get_json()


@pytest.fixture
def account(app: Flask) -> Account:
    return seed_account(app)


@pytest.fixture
def api(client: FlaskClient, account: Account) -> Api:
    return Api(client, account.key)


@pytest.fixture
def other(app: Flask) -> Account:
    """A second owner, whose objects the first must not see."""
    return seed_account(app, "oscar")


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def nested(depth: int) -> Any:
    """A JSON value nested ``depth`` lists deep."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class TestTheDocument:
    def test_the_document_is_valid_openapi_3_1_and_served_as_is(self, client):
        doc = document()  # validated by openapi_spec_validator
        assert doc["openapi"] == "3.1.0"
        response = client.get(f"{API}/openapi.json")
        assert response.status_code == 200 and response.mimetype == "application/json"
        served = response.get_json()
        assert served["servers"] == [{"url": "http://localhost/api/v1"}]
        assert {**served, "servers": doc["servers"]} == doc

    def test_it_describes_every_api_route(self, app):
        routes = {
            (rule.rule.removeprefix(API).replace("<int:link_id>", "{link_id}"), method.lower())
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith(API + "/")
            for method in rule.methods - {"HEAD", "OPTIONS"}
        }
        described = {(path, method) for path, item in document()["paths"].items() for method in item}
        assert routes == described - {(path, "parameters") for path in document()["paths"]}

    def test_every_operation_has_an_id_a_summary_and_an_example(self):
        for path, item in document()["paths"].items():
            for method, operation in item.items():
                assert operation.get("operationId") and operation.get("summary"), (method, path)
                media = [
                    *operation.get("requestBody", {}).get("content", {}).values(),
                    *(
                        m
                        for answer in operation["responses"].values()
                        for m in answer.get("content", {}).values()
                    ),
                ]
                assert media and all("example" in m for m in media), (method, path)

    def test_every_error_answer_is_a_problem(self):
        problem = {"$ref": "#/components/schemas/Problem"}
        for path, item in document()["paths"].items():
            for method, operation in item.items():
                for status, answer in operation["responses"].items():
                    if status == "default" or int(status) >= 400:
                        assert answer["content"] == {
                            "application/problem+json": answer["content"]["application/problem+json"]
                        }, (method, path, status)
                        assert answer["content"]["application/problem+json"]["schema"] == problem
                        schema_validator("Problem").validate(
                            answer["content"]["application/problem+json"]["example"]
                        )

    def test_free_form_objects_are_not_typed_as_classes_for_generated_clients(self):
        # openapi-python-client makes a class of any "type": "object"; metadata is the caller's own dict.
        link_create = document()["components"]["schemas"]["LinkCreate"]["properties"]["metadata"]
        assert "type" not in link_create and link_create["not"]["type"]
        assert "type" not in document()["components"]["schemas"]["Problem"]["properties"]["errors"]
        for good, bad in (({"a": [1, {"b": None}]}, ["a"]), ({}, "text")):
            validator = schema_validator("LinkCreate")
            assert validator.is_valid({"calendar": "x", "metadata": good})
            assert not validator.is_valid({"calendar": "x", "metadata": bad})

    def test_the_document_needs_no_key(self, client):
        response = client.get(f"{API}/openapi.json", headers={"Authorization": "Bearer oc_wrong"})
        assert response.status_code == 200
        assert response.get_json()["paths"] == document()["paths"]


class TestAuthentication:
    ENDPOINTS = [
        ("GET", "/one-time-links"),
        ("POST", "/one-time-links"),
        ("GET", "/one-time-links/1"),
        ("DELETE", "/one-time-links/1"),
        ("GET", "/calendars"),
        ("GET", "/bookings"),
    ]

    @pytest.mark.parametrize(("method", "path"), ENDPOINTS)
    @pytest.mark.parametrize(
        "authorization",
        [None, "Bearer oc_not-a-real-key", "Bearer", "Basic b2xnYTpwYXNz", "oc_token-without-scheme"],
    )
    def test_no_valid_key_is_401_with_www_authenticate(self, api, method, path, authorization):
        headers = {"Authorization": authorization} if authorization else {}
        response = api.call(method, path, key=None, headers=headers, json={"calendar": "olga-call"})
        problem = assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert problem["title"] and problem["detail"]

    def test_a_revoked_key_is_401(self, app, api, account):
        assert api.get("/calendars").status_code == 200
        with app.app_context():
            key = db.session.scalar(sa.select(ApiKey).where(ApiKey.owner_id == account.owner_id))
            apikeys.revoke_api_key(key, utcnow())
        response = api.get("/calendars")
        assert_problem(response, 401)
        assert "WWW-Authenticate" in response.headers

    def test_the_scheme_is_case_insensitive(self, api, account):
        response = api.get("/calendars", key=None, headers={"Authorization": f"bearer {account.key}"})
        assert response.status_code == 200

    def test_a_401_creates_nothing(self, app, api):
        api.post("/one-time-links", key=None, json={"calendar": "olga-call"})
        assert count(app, OneTimeLink) == 0


class TestCreate:
    def test_201_with_every_field_of_the_link_object(self, api, client, account):
        before = utcnow()
        response = api.post(
            "/one-time-links",
            json={
                "calendar": account.slug,
                "label": "For Ann",
                "max_uses": 2,
                "expires_in": 3600,
                "prefill": {"name": "Ann Example", "email": "ann@example.com"},
                "external_id": "crm-42",
                "metadata": {"deal": 7, "tags": ["vip"], "nested": {"ok": True}},
            },
        )
        assert response.status_code == 201
        link = response.get_json()
        assert set(link) == LINK_FIELDS
        assert isinstance(link["id"], int)
        assert link["calendar"] == account.slug
        assert link["url"].startswith("http://localhost/l/")
        assert link["label"] == "For Ann"
        assert link["status"] == "active"
        assert (link["uses"], link["max_uses"]) == (0, 2)
        expires_at = parse_instant(link["expires_at"])
        assert before + timedelta(seconds=3599) <= expires_at <= utcnow() + timedelta(seconds=3601)
        assert before - timedelta(seconds=1) <= parse_instant(link["created_at"]) <= utcnow()
        assert link["created_at"].endswith("Z") and link["expires_at"].endswith("Z")
        assert link["external_id"] == "crm-42"
        assert link["metadata"] == {"deal": 7, "tags": ["vip"], "nested": {"ok": True}}
        assert link["prefill"] == {"name": "Ann Example", "email": "ann@example.com"}
        assert link["booking"] is None
        page = client.get(urlsplit(link["url"]).path)
        assert page.status_code == 200
        assert 'value="Ann Example"' in page.get_data(as_text=True)

    def test_only_the_calendar_is_required_and_defaults_apply(self, api, account):
        link = api.create(calendar=account.slug)
        assert link["label"] is None and link["expires_at"] is None and link["external_id"] is None
        assert link["metadata"] is None and link["max_uses"] == 1
        assert link["prefill"] == {"name": None, "email": None}

    def test_the_calendar_by_id_and_by_id_as_text(self, api, account):
        assert api.create(calendar=account.calendar_id)["calendar"] == account.slug
        assert api.create(calendar=str(account.calendar_id))["calendar"] == account.slug

    def test_expires_at_is_kept_in_utc(self, api, account):
        link = api.create(calendar=account.slug, expires_at="2031-05-01T12:30:00+02:00")
        assert link["expires_at"] == "2031-05-01T10:30:00Z"

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
            ({"expires_at": "2099-05-01T12:30:00"}, "expires_at"),
            ({"expires_at": "tomorrow"}, "expires_at"),
            ({"expires_at": 1700000000}, "expires_at"),
            ({"expires_at": "9999-12-31T23:59:59-05:00"}, "expires_at"),
            ({"expires_in": 0}, "expires_in"),
            ({"expires_in": -5}, "expires_in"),
            ({"expires_in": 3653 * 24 * 3600 + 1}, "expires_in"),
            ({"expires_in": 1.5}, "expires_in"),
            ({"expires_in": "3600"}, "expires_in"),
            ({"expires_in": 60, "expires_at": "2099-01-01T00:00:00Z"}, "expires_in"),
            ({"max_uses": 0}, "max_uses"),
            ({"max_uses": 1001}, "max_uses"),
            ({"max_uses": -1}, "max_uses"),
            ({"max_uses": True}, "max_uses"),
            ({"max_uses": "2"}, "max_uses"),
            ({"max_uses": 2.5}, "max_uses"),
            ({"max_uses": None}, "max_uses"),
            ({"calendar": 1.5}, "calendar"),
            ({"calendar": True}, "calendar"),
            ({"calendar": ["olga-call"]}, "calendar"),
            ({"calendar": ""}, "calendar"),
            ({"calendar": "x" * 81}, "calendar"),
            ({"label": 5}, "label"),
            ({"label": "x" * 201}, "label"),
            ({"external_id": "x" * 201}, "external_id"),
            ({"external_id": ["a"]}, "external_id"),
            ({"prefill": "Ann"}, "prefill"),
            ({"prefill": {"phone": "1"}}, "prefill"),
            ({"prefill": {"email": "not-an-email"}}, "prefill.email"),
            ({"prefill": {"name": 5}}, "prefill.name"),
            ({"metadata": ["a"]}, "metadata"),
            ({"metadata": "a"}, "metadata"),
            ({"metadata": {"blob": "x" * 4100}}, "metadata"),
            ({"metadata": {"a": nested(33)}}, "metadata"),
        ],
    )
    def test_invalid_fields_are_422_naming_the_field(self, app, api, account, fields, field):
        response = api.post("/one-time-links", json={"calendar": account.slug, **fields})
        problem = assert_problem(response, 422)
        assert field in problem["errors"], problem
        assert count(app, OneTimeLink) == 0

    def test_numbers_with_a_zero_fraction_are_integers_as_in_json_schema(self, api, account):
        link = api.create(calendar=float(account.calendar_id), max_uses=2.0, expires_in=60.0)
        assert link["calendar"] == account.slug and link["max_uses"] == 2 and link["expires_at"]

    def test_max_uses_bounds_are_inclusive(self, api, account):
        assert api.create(calendar=account.slug, max_uses=1)["max_uses"] == 1
        assert api.create(calendar=account.slug, max_uses=1000)["max_uses"] == 1000

    def test_expires_in_bounds_are_inclusive(self, api, account):
        api.create(calendar=account.slug, expires_in=1)
        api.create(calendar=account.slug, expires_in=366 * 24 * 3600)

    def test_metadata_up_to_4_kb_is_kept(self, api, account):
        metadata = {"blob": "x" * (4096 - len('{"blob": ""}'))}
        assert len(json.dumps(metadata)) == 4096
        assert api.create(calendar=account.slug, metadata=metadata)["metadata"] == metadata
        metadata["blob"] += "x"
        problem = assert_problem(
            api.post("/one-time-links", json={"calendar": account.slug, "metadata": metadata}), 422
        )
        assert "4096 bytes" in problem["errors"]["metadata"]

    def test_unknown_fields_are_all_named(self, api, account):
        response = api.post("/one-time-links", json={"calendar": account.slug, "colour": "red", "uses": 5})
        problem = assert_problem(response, 422)
        assert set(problem["errors"]) == {"colour", "uses"}

    def test_every_bad_field_is_reported_at_once(self, api):
        response = api.post("/one-time-links", json={"label": 1, "max_uses": 0, "metadata": []})
        assert set(assert_problem(response, 422)["errors"]) == {"calendar", "label", "max_uses", "metadata"}

    @pytest.mark.parametrize("body", [[], "calendar", 5, None])
    def test_a_body_that_is_not_an_object_is_422(self, api, body):
        response = api.post("/one-time-links", data=json.dumps(body), content_type="application/json")
        assert "body" in assert_problem(response, 422)["errors"]

    def test_an_empty_body_is_422(self, api):
        assert_problem(api.post("/one-time-links", data=b"", content_type="application/json"), 422)

    @pytest.mark.parametrize(
        ("data", "content_type"),
        [
            ("calendar=olga-call", "application/x-www-form-urlencoded"),
            ('{"calendar": "olga-call"}', "text/plain"),
            ('{"calendar": "olga-call"}', None),
        ],
    )
    def test_a_body_that_is_not_json_is_415(self, app, api, data, content_type):
        response = api.post("/one-time-links", data=data, content_type=content_type)
        assert_problem(response, 415)
        assert count(app, OneTimeLink) == 0

    @pytest.mark.parametrize(
        "data",
        [
            b'{"calendar": "olga-call"',
            b"{'calendar': 'olga-call'}",
            b'{"calendar": "olga-call", "metadata": {"a": NaN}}',
            b'{"calendar": "olga-call", "metadata": {"a": Infinity}}',
            b'{"calendar": "olga\x00-call"}',
            b'{"calendar": "\xff\xfe"}',
            b"[" * 5000 + b"]" * 5000,
            b'{"calendar": "olga-call", "max_uses": 1' + b"0" * 5000 + b"}",
        ],
    )
    def test_invalid_json_is_400(self, app, api, data):
        response = api.post("/one-time-links", data=data, content_type="application/json")
        assert_problem(response, 400)
        assert count(app, OneTimeLink) == 0

    def test_json_with_a_charset_or_a_json_suffix_is_accepted(self, api, account):
        body = json.dumps({"calendar": account.slug})
        assert (
            api.post("/one-time-links", data=body, content_type="application/json; charset=utf-8").status_code
            == 201
        )

    def test_an_oversized_body_is_413_problem_json(self, app, api, account):
        body = json.dumps({"calendar": account.slug, "label": "x" * (70 * 1024)})
        response = api.post("/one-time-links", data=body, content_type="application/json")
        assert_problem(response, 413)
        assert count(app, OneTimeLink) == 0

    def test_another_owners_calendar_is_404(self, app, api, other):
        for ref in (other.slug, other.calendar_id, str(other.calendar_id)):
            assert_problem(api.post("/one-time-links", json={"calendar": ref}), 404)
        assert_problem(api.post("/one-time-links", json={"calendar": "no-such-calendar"}), 404)
        assert count(app, OneTimeLink) == 0

    @pytest.mark.parametrize("ref", [0, -5, 2**31, 2**70, "\u00b2", "\u0661", "9" * 30])
    def test_ids_that_name_no_calendar_are_answered_not_500(self, api, ref):
        response = api.post("/one-time-links", json={"calendar": ref})
        assert response.status_code in (404, 422)


class TestHostileStrings:
    """NUL bytes and lone surrogates are refused with 422 on both databases, never a 500."""

    @pytest.fixture
    def any_api(self, any_app: Flask) -> tuple[Api, Account]:
        account = seed_account(any_app)
        return Api(any_app.test_client(), account.key), account

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("label", "a\\u0000b"),
            ("label", "\\ud800"),
            ("label", "bell\\u0007"),
            ("external_id", "\\udfff"),
            ("external_id", "\\u0000"),
            ("calendar", "\\ud83d"),
            ("calendar", "olga\\u0000"),
        ],
    )
    def test_in_fields(self, any_app, any_api, field, value):
        api, account = any_api
        body = {"calendar": account.slug, field: "PLACEHOLDER"}
        data = json.dumps(body).replace("PLACEHOLDER", value)
        response = api.post("/one-time-links", data=data, content_type="application/json")
        assert field in assert_problem(response, 422)["errors"]
        assert count(any_app, OneTimeLink) == 0

    @pytest.mark.parametrize(
        "fragment",
        [
            '"prefill": {"name": "\\ud800"}',
            '"prefill": {"email": "a\\u0000@example.com"}',
            '"metadata": {"k": "\\ud800"}',
            '"metadata": {"\\udc00": 1}',
            '"metadata": {"k": ["ok", {"deep": "\\u0000"}]}',
        ],
    )
    def test_in_nested_fields(self, any_app, any_api, fragment):
        api, account = any_api
        data = f'{{"calendar": "{account.slug}", {fragment}}}'
        response = api.post("/one-time-links", data=data, content_type="application/json")
        assert_problem(response, 422)
        assert count(any_app, OneTimeLink) == 0

    def test_a_lone_surrogate_is_named_before_any_length(self, any_api):
        api, account = any_api
        data = json.dumps({"calendar": account.slug, "label": "PLACEHOLDER"}).replace(
            "PLACEHOLDER", "\\ud800x"
        )
        response = api.post("/one-time-links", data=data, content_type="application/json")
        message = assert_problem(response, 422)["errors"]["label"]
        assert message == "must be one line of text; remove the unpaired surrogate U+D800"

    def test_in_the_idempotency_key(self, any_api):
        api, account = any_api
        response = api.post(
            "/one-time-links", json={"calendar": account.slug}, headers={"Idempotency-Key": "a\x01b"}
        )
        assert "Idempotency-Key" in assert_problem(response, 422)["errors"]

    @pytest.mark.parametrize(
        ("path", "status"),
        [
            ("/one-time-links?external_id=%00", 422),
            ("/one-time-links?external_id=%ED%A0%80", 200),
            ("/one-time-links?calendar=%00", 404),
            ("/one-time-links?calendar=%C2%B2", 404),
            ("/one-time-links?calendar=99999999999999999999", 404),
            ("/one-time-links?status=%00", 422),
            ("/one-time-links?limit=%C2%B2", 422),
            ("/one-time-links?limit=" + "9" * 5000, 422),
            ("/one-time-links?cursor=%00", 422),
            ("/one-time-links?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk", 422),
            ("/bookings?calendar=%00", 404),
            ("/bookings?cursor=wrI", 422),
            ("/one-time-links/99999999999999999999", 404),
        ],
    )
    def test_in_query_and_path(self, any_api, path, status):
        api, _account = any_api
        assert api.get(path).status_code == status

    def test_huge_link_ids_are_404_on_delete(self, any_api):
        api, _account = any_api
        assert_problem(api.delete("/one-time-links/99999999999999999999"), 404)
        assert_problem(api.delete("/one-time-links/0"), 404)


class TestIdempotency:
    def test_the_same_key_and_body_replays_the_first_answer(self, app, api, account):
        body = {"calendar": account.slug, "external_id": "crm-1"}
        first = api.post("/one-time-links", json=body, headers={"Idempotency-Key": "req-1"})
        second = api.post("/one-time-links", json=body, headers={"Idempotency-Key": "req-1"})
        assert first.status_code == second.status_code == 201
        assert first.get_json() == second.get_json()
        assert second.headers["Idempotent-Replayed"] == "true"
        assert count(app, OneTimeLink) == 1
        assert count(app, IdempotentRequest) == 1
        # The kept answer holds no usable link; the replay rebuilds its url.
        token = first.get_json()["url"].rsplit("/", 1)[1]
        with app.app_context():
            (stored,) = db.session.scalars(sa.select(IdempotentRequest.response_body)).all()
        assert token not in stored and json.loads(stored)["url"] is None

    def test_key_order_in_the_body_does_not_matter(self, app, api, account):
        api.post(
            "/one-time-links",
            data=f'{{"calendar": "{account.slug}", "label": "a"}}',
            content_type="application/json",
            headers={"Idempotency-Key": "k"},
        )
        again = api.post(
            "/one-time-links",
            data=f'{{"label": "a", "calendar": "{account.slug}"}}',
            content_type="application/json",
            headers={"Idempotency-Key": "k"},
        )
        assert again.status_code == 201
        assert count(app, OneTimeLink) == 1

    def test_the_same_key_with_another_body_is_422(self, app, api, account):
        api.post("/one-time-links", json={"calendar": account.slug}, headers={"Idempotency-Key": "req-2"})
        response = api.post(
            "/one-time-links",
            json={"calendar": account.slug, "label": "other"},
            headers={"Idempotency-Key": "req-2"},
        )
        assert "Idempotency-Key" in assert_problem(response, 422)["errors"]
        assert count(app, OneTimeLink) == 1

    def test_other_keys_make_other_links(self, app, api, account):
        body = {"calendar": account.slug}
        ids = {
            api.post("/one-time-links", json=body, headers={"Idempotency-Key": k}).get_json()["id"]
            for k in "abc"
        }
        assert len(ids) == 3
        assert len({api.create(**body)["id"] for _ in range(2)}) == 2  # no key: no replay
        assert count(app, OneTimeLink) == 5

    def test_keys_belong_to_one_api_key(self, app, client, api, account):
        with app.app_context():
            owner = db.session.get_one(Owner, account.owner_id)
            _key, second_key = apikeys.create_api_key(owner, "second", utcnow())
        body = {"calendar": account.slug}
        first = api.post("/one-time-links", json=body, headers={"Idempotency-Key": "shared"})
        second = Api(client, second_key).post(
            "/one-time-links", json=body, headers={"Idempotency-Key": "shared"}
        )
        assert first.get_json()["id"] != second.get_json()["id"]

    def test_a_failed_request_is_not_remembered(self, app, api, account):
        failed = api.post(
            "/one-time-links", json={"calendar": "nope"}, headers={"Idempotency-Key": "retry-me"}
        )
        assert failed.status_code == 404
        invalid = api.post(
            "/one-time-links",
            json={"calendar": account.slug, "max_uses": 0},
            headers={"Idempotency-Key": "retry-me"},
        )
        assert invalid.status_code == 422
        ok = api.post(
            "/one-time-links", json={"calendar": account.slug}, headers={"Idempotency-Key": "retry-me"}
        )
        assert ok.status_code == 201 and "Idempotent-Replayed" not in ok.headers

    def test_keys_expire_after_24_hours(self, app, api, account):
        body = {"calendar": account.slug}
        first = api.post("/one-time-links", json=body, headers={"Idempotency-Key": "old"}).get_json()
        with app.app_context():
            stored = db.session.scalar(sa.select(IdempotentRequest))
            stored.created_at = utcnow() - timedelta(hours=25)
            db.session.commit()
        again = api.post("/one-time-links", json=body, headers={"Idempotency-Key": "old"}).get_json()
        assert again["id"] != first["id"]

    @pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
    def test_bad_keys_are_422(self, api, account, key):
        response = api.post(
            "/one-time-links", json={"calendar": account.slug}, headers={"Idempotency-Key": key}
        )
        assert "Idempotency-Key" in assert_problem(response, 422)["errors"]


class TestListAndShow:
    def test_pages_follow_the_cursor_without_gaps_or_duplicates(self, api, account):
        created = [api.create(calendar=account.slug, label=f"n{i}")["id"] for i in range(7)]
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            query = f"?limit=3&cursor={cursor}" if cursor else "?limit=3"
            page = api.get(f"/one-time-links{query}").get_json()
            pages += 1
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert len(page["items"]) == 3
        assert pages == 3
        assert seen == sorted(created, reverse=True)

    def test_a_full_last_page_has_no_next_cursor(self, api, account):
        for _ in range(3):
            api.create(calendar=account.slug)
        page = api.get("/one-time-links?limit=3").get_json()
        assert len(page["items"]) == 3 and page["next_cursor"] is None

    def test_default_and_bounds_of_limit(self, api, account):
        for _ in range(21):
            api.create(calendar=account.slug)
        page = api.get("/one-time-links").get_json()
        assert len(page["items"]) == 20 and page["next_cursor"]
        assert len(api.get("/one-time-links?limit=100").get_json()["items"]) == 21
        for bad in ("0", "101", "-1", "two", "1.5", ""):
            assert "limit" in assert_problem(api.get(f"/one-time-links?limit={bad}"), 422)["errors"]

    def test_bad_cursors_are_422(self, api):
        for bad in ("!!!", "abc", "LTE", "MA"):  # "LTE" is "-1", "MA" is "0"
            assert "cursor" in assert_problem(api.get(f"/one-time-links?cursor={bad}"), 422)["errors"]

    def test_filters(self, app, client, api, account):
        with app.app_context():
            owner = db.session.get_one(Owner, account.owner_id)
            second = Calendar(owner=owner, name="Second", slug="second-call", weekly_hours=ALL_DAY)
            db.session.add(second)
            db.session.commit()
            expired, _ = links.issue_link(
                db.session.get_one(Calendar, account.calendar_id),
                runtime().link_keys,
                now=utcnow() - timedelta(hours=2),
                expires_at=utcnow() - timedelta(hours=1),
            )
            expired_id = expired.id
        active = api.create(calendar=account.slug, external_id="crm-7")
        used = api.create(calendar=account.slug, external_id="crm-7")
        book(client, used["url"])
        revoked = api.create(calendar=account.slug)
        api.delete(f"/one-time-links/{revoked['id']}")
        elsewhere = api.create(calendar="second-call")

        def ids(query: str) -> list[int]:
            return [item["id"] for item in api.get(f"/one-time-links?{query}").get_json()["items"]]

        assert ids("status=active") == [elsewhere["id"], active["id"]]
        assert ids("status=used") == [used["id"]]
        assert ids("status=revoked") == [revoked["id"]]
        assert ids("status=expired") == [expired_id]
        assert ids("external_id=crm-7") == [used["id"], active["id"]]
        assert ids("external_id=crm-8") == []
        assert ids("calendar=second-call") == [elsewhere["id"]]
        assert elsewhere["id"] not in ids(f"calendar={account.calendar_id}")
        assert ids(f"calendar={account.slug}&status=active&external_id=crm-7") == [active["id"]]
        for item in api.get("/one-time-links?status=used").get_json()["items"]:
            assert item["status"] == "used"
        assert "status" in assert_problem(api.get("/one-time-links?status=gone"), 422)["errors"]

    def test_other_owners_links_are_invisible(self, client, api, account, other):
        mine = api.create(calendar=account.slug)
        theirs = Api(client, other.key).create(calendar=other.slug)
        assert [i["id"] for i in api.get("/one-time-links").get_json()["items"]] == [mine["id"]]
        assert_problem(api.get(f"/one-time-links?calendar={other.slug}"), 404)
        assert_problem(api.get(f"/one-time-links/{theirs['id']}"), 404)
        assert_problem(api.delete(f"/one-time-links/{theirs['id']}"), 404)
        assert Api(client, other.key).get(f"/one-time-links/{theirs['id']}").get_json()["status"] == "active"

    def test_get_one(self, api, account):
        link = api.create(calendar=account.slug, label="Hello")
        assert api.get(f"/one-time-links/{link['id']}").get_json() == link
        assert_problem(api.get("/one-time-links/999999"), 404)

    def test_the_link_object_shows_its_latest_booking(self, client, api, account):
        link = api.create(calendar=account.slug)
        slot = book(client, link["url"], name="Ivy Invitee", email="ivy@example.com")
        shown = api.get(f"/one-time-links/{link['id']}").get_json()
        assert shown["status"] == "used" and shown["uses"] == 1
        booking = shown["booking"]
        assert booking["link_id"] == link["id"]
        assert booking["calendar"] == account.slug
        assert booking["start"] == slot
        assert parse_instant(booking["end"]) - parse_instant(booking["start"]) == timedelta(minutes=30)
        assert booking["invitee"] == {"name": "Ivy Invitee", "email": "ivy@example.com"}
        assert booking["cancelled_at"] is None and booking["timezone"]
        assert client.get(f"/b/{booking['ref']}").status_code == 200
        assert client.get(urlsplit(link["url"]).path).status_code == 410


class TestRevoke:
    def test_delete_revokes_and_the_link_answers_410(self, client, api, account):
        link = api.create(calendar=account.slug)
        response = api.delete(f"/one-time-links/{link['id']}")
        assert response.status_code == 200
        revoked = response.get_json()
        assert revoked["status"] == "revoked" and revoked["id"] == link["id"]
        assert client.get(urlsplit(link["url"]).path).status_code == 410
        again = api.delete(f"/one-time-links/{link['id']}")
        assert again.status_code == 200 and again.get_json()["status"] == "revoked"
        assert api.get(f"/one-time-links/{link['id']}").get_json()["status"] == "revoked"

    def test_delete_of_an_unknown_link_is_404(self, api):
        assert_problem(api.delete("/one-time-links/424242"), 404)


class TestCalendarsAndBookings:
    def test_calendars_lists_only_ones_own(self, api, account, other):
        response = api.get("/calendars")
        assert response.status_code == 200
        (calendar,) = response.get_json()["items"]
        assert calendar["id"] == account.calendar_id and calendar["slug"] == account.slug
        assert calendar["name"] == "Olga's call" and calendar["timezone"] == "UTC"
        assert calendar["duration_minutes"] == 30 and calendar["public_page_enabled"] is True
        assert calendar["scheduling_url"] == f"http://localhost/c/{account.slug}"
        assert calendar["permanent_url"].startswith("http://localhost/p/")
        assert set(response.get_json()) == {"items"}

    def test_bookings_page_through_with_a_cursor(self, client, api, account, other):
        slots = []
        made = []
        for i in range(5):
            link = api.create(calendar=account.slug, external_id=f"c{i}")
            slots.append(book(client, link["url"], email=f"p{i}@example.com"))
            made.append(link["id"])
        theirs = Api(client, other.key).create(calendar=other.slug)
        book(client, theirs["url"])
        assert len(set(slots)) == 5

        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = api.get(f"/bookings?limit=2{f'&cursor={cursor}' if cursor else ''}").get_json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert len(page["items"]) == 2
        assert [b["link_id"] for b in items] == list(reversed(made))
        assert len({b["ref"] for b in items}) == 5
        assert {b["start"] for b in items} == set(slots)
        assert [b["invitee"]["email"] for b in items] == [f"p{i}@example.com" for i in reversed(range(5))]
        assert all(b["calendar"] == account.slug for b in items)
        assert [
            b["ref"] for b in api.get(f"/bookings?calendar={account.slug}&limit=100").get_json()["items"]
        ] == [b["ref"] for b in items]
        assert_problem(api.get(f"/bookings?calendar={other.slug}"), 404)
        assert api.get(f"/bookings?calendar={account.calendar_id}").status_code == 200
        assert "cursor" in assert_problem(api.get("/bookings?cursor=%25%25"), 422)["errors"]
        assert "limit" in assert_problem(api.get("/bookings?limit=0"), 422)["errors"]

    def test_no_bookings_is_an_empty_page(self, api):
        assert api.get("/bookings").get_json() == {"items": [], "next_cursor": None}


class TestOtherErrors:
    def test_unknown_api_paths_are_404_problem_json(self, client, account):
        for path in ("/api/v1/nope", "/api/v1/one-time-links/abc", "/api/v2/calendars"):
            response = client.get(path, headers={"Authorization": f"Bearer {account.key}"})
            assert_problem(response, 404)

    def test_wrong_methods_are_405_problem_json(self, client, account):
        response = client.put(f"{API}/calendars", headers={"Authorization": f"Bearer {account.key}"})
        assert_problem(response, 405)
        assert "GET" in response.headers["Allow"]


class TestCommandLine:
    def test_apikey_create_prints_a_working_key_last(self, app, runner, client, account):
        result = runner.invoke(args=["apikey", "create", "--owner", account.email, "--name", "Zapier"])
        assert result.exit_code == 0, result.output
        key = result.output.strip().splitlines()[-1]
        assert key.startswith("oc_") and key not in result.output.strip().splitlines()[0]
        response = Api(client, key).get("/calendars")
        assert response.status_code == 200
        assert response.get_json()["items"][0]["slug"] == account.slug
        with app.app_context():
            stored = db.session.scalar(sa.select(ApiKey).where(ApiKey.name == "Zapier"))
            assert stored.key_hash != key and key not in stored.key_hash

    def test_apikey_create_for_an_unknown_owner_fails(self, runner):
        result = runner.invoke(args=["apikey", "create", "--owner", "nobody@example.com"])
        assert result.exit_code != 0 and "no owner" in result.output

    def test_webhook_create_refuses_loopback_by_default(self, app, runner, account):
        result = runner.invoke(
            args=["webhook", "create", "--owner", account.email, "--url", "http://127.0.0.1:9/hook"]
        )
        assert result.exit_code == 2
        assert "ONCECAL_WEBHOOK_ALLOW_PRIVATE" in result.output
        result = runner.invoke(
            args=["webhook", "create", "--owner", account.email, "--url", "ftp://example.com/x"]
        )
        assert result.exit_code == 2

    def test_webhook_create_with_allow_private_prints_the_secret_last(self, app, runner, account):
        app.config["WEBHOOK_ALLOW_PRIVATE"] = True
        result = runner.invoke(
            args=["webhook", "create", "--owner", account.email, "--url", "http://127.0.0.1:9/hook"]
        )
        assert result.exit_code == 0, result.output
        secret = result.output.strip().splitlines()[-1]
        assert secret.startswith("whsec_") and len(secret) > 30

    def test_the_environment_variable_allows_private_targets(self, monkeypatch, sqlite_url):
        monkeypatch.setenv("ONCECAL_WEBHOOK_ALLOW_PRIVATE", "1")
        app = make_test_app(sqlite_url)
        with app.app_context():
            db.create_all()
        account = seed_account(app)
        result = app.test_cli_runner().invoke(
            args=["webhook", "create", "--owner", account.email, "--url", "http://localhost:9/hook"]
        )
        assert result.exit_code == 0, result.output
        assert result.output.strip().splitlines()[-1].startswith("whsec_")
        with app.app_context():
            db.engine.dispose()

    def test_link_create_json_is_the_api_link_object(self, runner, api, account):
        result = runner.invoke(args=["link", "create", account.slug, "--label", "CLI", "--json"])
        assert result.exit_code == 0, result.output
        link = json.loads(result.output)
        schema_validator("Link").validate(link)
        assert set(link) == LINK_FIELDS and link["label"] == "CLI"
        assert api.get(f"/one-time-links/{link['id']}").get_json() == link


def test_instants_are_rfc3339_utc(api, account):
    link = api.create(calendar=account.slug, expires_in=60)
    for field in ("created_at", "expires_at"):
        parsed = parse_instant(link[field])
        assert parsed.tzinfo is not None and parsed.utcoffset() == UTC.utcoffset(None)
