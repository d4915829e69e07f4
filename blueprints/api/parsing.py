"""Validate the JSON of API requests into plain values, collecting every field error."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from blueprints.api.problems import Problem
from oncecal import text
from oncecal.email_addresses import InvalidEmail, check_email_address, reserved_domains_allowed
from oncecal.openapi import MAX_ID
from oncecal.services.links import MAX_EXPIRY, LinkStatus

MAX_METADATA_BYTES = 4096
# Deeper JSON would exhaust Python's recursion limit when it is encoded again.
MAX_METADATA_DEPTH = 32
MAX_EXPIRES_IN = int(MAX_EXPIRY.total_seconds())
ASCII_NUMBER = re.compile(r"[0-9]{1,10}")
CREATE_FIELDS = {
    "calendar",
    "label",
    "expires_at",
    "expires_in",
    "max_uses",
    "prefill",
    "external_id",
    "metadata",
}


@dataclass(frozen=True)
class NewLink:
    calendar: str | int
    label: str | None
    expires_at: datetime | None
    max_uses: int
    prefill_name: str | None
    prefill_email: str | None
    external_id: str | None
    metadata: dict[str, Any] | None


def parse_id(value: str | int) -> int | None:
    """Return the row id a number or ASCII digit string names, or None if it can name none."""
    if isinstance(value, str):
        if not ASCII_NUMBER.fullmatch(value):
            return None
        value = int(value)
    return value if 1 <= value <= MAX_ID else None


def _integer(value: Any, low: int, high: int) -> int | None:
    """Return a JSON integer within [low, high], or None.

    As in JSON Schema, a number with a zero fraction (2.0) is an integer;
    booleans are not.
    """
    if isinstance(value, float) and value.is_integer() and low <= value <= high:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def _walk(value: Any) -> tuple[list[str], int]:
    """Every key and string inside a JSON value, and how deep it nests; without recursion."""
    texts: list[str] = []
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_METADATA_DEPTH:
            break
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            texts.extend(item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
    return texts, deepest


def _text(body: dict[str, Any], name: str, max_length: int, errors: dict[str, str]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        errors[name] = "must be a string"
    elif len(value) > max_length:
        errors[name] = f"must be at most {max_length} characters"
    elif fault := text.one_line_fault(value):
        errors[name] = f"must be one line of text; remove {fault}"
    else:
        return value.strip() or None
    return None


def parse_create(body: Any, now: datetime) -> NewLink:
    """Check a create-link body; raise a 422 Problem naming every bad field."""
    if not isinstance(body, dict):
        raise Problem(422, "The body must be a JSON object.", {"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    for unknown in sorted(set(body) - CREATE_FIELDS):
        errors[unknown] = "is not a known field"

    calendar = body.get("calendar")
    if calendar is None:
        errors["calendar"] = "is required (a calendar slug or id)"
    elif isinstance(calendar, str):
        if not calendar or len(calendar) > 80 or text.one_line_fault(calendar):
            errors["calendar"] = "must be a calendar slug or id"
    elif (calendar := _integer(calendar, 1, MAX_ID)) is None:
        errors["calendar"] = "must be a calendar slug or id"

    label = _text(body, "label", 200, errors)
    external_id = _text(body, "external_id", 200, errors)

    max_uses = _integer(body.get("max_uses", 1), 1, 1000)
    if max_uses is None:
        errors["max_uses"] = "must be an integer from 1 to 1000"
        max_uses = 1

    expires_at = None
    if body.get("expires_at") is not None and body.get("expires_in") is not None:
        errors["expires_in"] = "give expires_at or expires_in, not both"
    elif body.get("expires_at") is not None:
        raw = body["expires_at"]
        try:
            if not isinstance(raw, str):
                raise ValueError
            expires_at = datetime.fromisoformat(raw)
            if expires_at.tzinfo is None:
                raise ValueError
            expires_at = expires_at.astimezone(UTC)
        except (ValueError, OverflowError):
            errors["expires_at"] = "must be an ISO 8601 date-time with a time zone, like 2026-12-01T09:00:00Z"
            expires_at = None
        else:
            if expires_at <= now:
                errors["expires_at"] = "must be in the future"
            elif expires_at > now + MAX_EXPIRY:
                errors["expires_at"] = "must be at most 10 years ahead"
    elif body.get("expires_in") is not None:
        seconds = _integer(body["expires_in"], 1, MAX_EXPIRES_IN)
        if seconds is None:
            errors["expires_in"] = f"must be a number of seconds from 1 to {MAX_EXPIRES_IN} (10 years)"
        else:
            expires_at = now + timedelta(seconds=seconds)

    prefill_name = prefill_email = None
    prefill = body.get("prefill")
    if prefill is not None:
        if not isinstance(prefill, dict) or set(prefill) - {"name", "email"}:
            errors["prefill"] = "must be an object with name and email"
        else:
            prefill_name = _text(prefill, "name", 120, errors)
            prefill_email = _text(prefill, "email", 254, errors)
            if prefill_email:
                try:
                    check_email_address(prefill_email, reserved_allowed=reserved_domains_allowed())
                except InvalidEmail as refused:
                    errors["prefill.email"] = (
                        str(refused) if refused.reserved_domain else "must be an email address"
                    )
            for key in ("name", "email"):
                if key in errors:
                    errors[f"prefill.{key}"] = errors.pop(key)

    metadata = body.get("metadata")
    if metadata is not None:
        texts, depth = _walk(metadata)
        if not isinstance(metadata, dict):
            errors["metadata"] = "must be a JSON object"
        elif depth > MAX_METADATA_DEPTH:
            errors["metadata"] = f"must nest at most {MAX_METADATA_DEPTH} levels deep"
        elif len(json.dumps(metadata).encode()) > MAX_METADATA_BYTES:
            errors["metadata"] = f"must be at most {MAX_METADATA_BYTES} bytes as JSON"
        elif fault := next(filter(None, map(text.multi_line_fault, texts)), None):
            errors["metadata"] = f"must not hold control characters; remove {fault}"

    if errors:
        raise Problem(422, "The request body has invalid fields.", errors)
    assert calendar is not None  # else errors names it
    return NewLink(calendar, label, expires_at, max_uses, prefill_name, prefill_email, external_id, metadata)


def parse_status(value: str | None) -> LinkStatus | None:
    if value is None:
        return None
    try:
        return LinkStatus(value)
    except ValueError:
        raise Problem(
            422, "Unknown status.", {"status": "must be one of active, used, expired, revoked"}
        ) from None


def parse_limit(value: str | None) -> int:
    if value is None:
        return 20
    if not re.fullmatch(r"[0-9]{1,3}", value) or not 1 <= int(value) <= 100:
        raise Problem(422, "Invalid limit.", {"limit": "must be an integer from 1 to 100"})
    return int(value)


def parse_query_text(name: str, value: str | None) -> str | None:
    """Return a text query parameter, refusing characters no stored value can hold."""
    if value is not None and (fault := text.one_line_fault(value)):
        raise Problem(422, f"Invalid {name}.", {name: f"must be one line of text; remove {fault}"})
    return value
