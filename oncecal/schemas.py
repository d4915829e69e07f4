"""The API's shapes as pydantic models: each validates, serializes and writes its part of the OpenAPI document.

Every limit of a field lives here once, as the constraint of its type: the
document (oncecal/openapi.py) is generated from these models, the API
validates its requests with them, and ``links.issue_link`` checks every new
link's settings, the API's, the dashboard's and the CLI's, with
``LinkSettings``, the one definition of a valid link. Answers (``Link``, ``Booking``, ``Calendar``)
are built from rows by their ``of`` constructors and dumped as JSON; the
webhooks send the same shapes.

A validation error becomes the problem document's ``errors`` map
(``field_errors``): a field path such as ``prefill.email`` to one sentence.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from oncecal import models as rows
from oncecal import text
from oncecal.email_addresses import InvalidEmail, check_email_address, reserved_domains_allowed

# Ids are INTEGER columns: a larger number names no row, and would overflow
# the database's integer type rather than find nothing.
MAX_ID = 2**31 - 1
# PRODUCT.md: a link expires at most 10 years ahead (3,653 days: ten years with their leap days).
MAX_EXPIRY = timedelta(days=3653)
TEN_YEARS = f"{MAX_EXPIRY.days // 365} years"
LABEL_LENGTH = 200  # a link's label and external_id
NAME_LENGTH = 120
EMAIL_LENGTH = 254
SLUG_LENGTH = 80
MAX_USES = 1000
MAX_CUTOFF_HOURS = 24 * 30
MAX_METADATA_BYTES = 4096
# Deeper JSON would exhaust Python's recursion limit when it is encoded again.
MAX_METADATA_DEPTH = 32
# 1 to 255 printable ASCII characters (a UUID, say).
IDEMPOTENCY_KEY_PATTERN = "^[\\u0020-\\u007e]{1,255}$"
# Text fields are one line: no control characters, line breaks or tabs. The
# document states it as a pattern; the check is text.one_line_fault, since
# pydantic's regular expressions cannot name lone surrogates.
TEXT_PATTERN = f"^[^{text.NOT_ONE_LINE}]*$"
_DIGITS = re.compile(r"[0-9]{1,10}")


class LinkStatus(enum.StrEnum):
    """A link's status (PRODUCT.md rule 1); services.links judges it."""

    ACTIVE = "active"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"


def parse_id(value: str | int) -> int | None:
    """Return the row id a number or ASCII digit string names, or None if it can name none."""
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            return None
        value = int(value)
    return value if 1 <= value <= MAX_ID else None


def _refuse(kind: str, sentence: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, sentence, context)


# --- Field types: the constraint, its check, its sentence and its schema, once each. ---


@dataclass(frozen=True)
class OneLine:
    """A string of one line and at most ``max_length`` characters; blank reads as absent (None) unless ``as_is``."""

    max_length: int | None
    as_is: bool = False

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # The characters first: a lone surrogate is named as such, before any length.
        return core_schema.no_info_before_validator_function(
            self.refuse_faults,
            core_schema.no_info_after_validator_function(
                self.tidy, core_schema.str_schema(strict=True, max_length=self.max_length)
            ),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), "pattern": TEXT_PATTERN}

    @staticmethod
    def refuse_faults(value: Any) -> Any:
        if isinstance(value, str) and (fault := text.one_line_fault(value)):
            raise _refuse("one_line", "must be one line of text; remove {fault}", fault=fault)
        return value

    def tidy(self, value: str) -> str | None:
        return value if self.as_is else value.strip() or None


@dataclass(frozen=True)
class EmailAddress(OneLine):
    """A one-line email address this deployment can send to."""

    max_length: int | None = EMAIL_LENGTH

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**super().__get_pydantic_json_schema__(schema, handler), "format": "email"}

    def tidy(self, value: str) -> str | None:
        address = super().tidy(value)
        if address:
            try:
                check_email_address(address, reserved_allowed=reserved_domains_allowed())
            except InvalidEmail as refused:
                raise _refuse(
                    "email", str(refused) if refused.reserved_domain else "must be an email address"
                ) from None
        return address


@dataclass(frozen=True)
class Integer:
    """An integer from ``low`` to ``high``. As in JSON Schema, 2.0 is an integer; true and "2" are not."""

    low: int
    high: int
    sentence: str = "must be an integer from {low} to {high}"
    in_text: bool = False  # a query parameter: ASCII digits

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(
            self.check, core_schema.int_schema(ge=self.low, le=self.high)
        )

    def check(self, value: Any) -> int:
        if self.in_text and isinstance(value, str) and _DIGITS.fullmatch(value):
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise _refuse("integer", self.sentence, low=self.low, high=self.high)
        return value


class Checked:
    """A field type whose value one ``check`` of ours reads whole; ``stated`` is its JSON Schema."""

    def check(self, value: Any, info: core_schema.ValidationInfo) -> Any:
        raise NotImplementedError

    def stated(self) -> JsonSchemaValue:
        raise NotImplementedError

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(self.check)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return self.stated()


@dataclass(frozen=True)
class CalendarRef(Checked):
    """A calendar's slug (one line, 1 to 80 characters) or id."""

    ID: ClassVar = Integer(1, MAX_ID)

    def stated(self) -> JsonSchemaValue:
        return {
            "oneOf": [
                {"type": "string", "minLength": 1, "maxLength": SLUG_LENGTH, "pattern": TEXT_PATTERN},
                {"type": "integer", "minimum": self.ID.low, "maximum": self.ID.high},
            ],
        }

    def check(self, value: Any, info: core_schema.ValidationInfo) -> str | int:
        if isinstance(value, str):
            if 1 <= len(value) <= SLUG_LENGTH and not text.one_line_fault(value):
                return value
        else:
            try:
                return self.ID.check(value)
            except PydanticCustomError:
                pass
        raise _refuse("calendar", "must be a calendar slug or id")


@dataclass(frozen=True)
class Instant(Checked):
    """An ISO 8601 date-time with its offset, read as UTC, at most MAX_EXPIRY ahead; in the future unless ``past_ok``.

    The dashboard, the CLI and the tests hand in datetimes; an API client a string.
    """

    past_ok: bool = False

    def stated(self) -> JsonSchemaValue:
        return {
            "type": "string",
            "format": "date-time",
            "description": f"An instant with its offset, at most {TEN_YEARS} ({MAX_EXPIRY.days:,} days) ahead.",
        }

    def check(self, value: Any, info: core_schema.ValidationInfo) -> datetime:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return _within_expiry(value.astimezone(UTC), _now(info), past_ok=self.past_ok)
        try:
            if not isinstance(value, str):
                raise ValueError
            instant = datetime.fromisoformat(value)
            if instant.tzinfo is None:
                raise ValueError
            instant = instant.astimezone(UTC)
        except (ValueError, OverflowError):
            raise _refuse(
                "date_time", "must be an ISO 8601 date-time with a time zone, like 2026-12-01T09:00:00Z"
            ) from None
        return _within_expiry(instant, _now(info), past_ok=self.past_ok)


def _now(info: core_schema.ValidationInfo) -> datetime:
    now: datetime = (info.context or {}).get("now") or datetime.now(UTC)
    return now


def _within_expiry(instant: datetime, now: datetime, *, past_ok: bool) -> datetime:
    if instant <= now and not past_ok:
        raise _refuse("expiry", "must be in the future")
    if instant > now + MAX_EXPIRY:
        raise _refuse("expiry", "must be at most {years} ahead", years=TEN_YEARS)
    return instant


# "Anything but a non-object", rather than "type": "object": generated clients
# (openapi-python-client) then take and give a plain dict, not a class of theirs.
ANY_OBJECT: JsonDict = {"not": {"type": ["null", "boolean", "number", "string", "array"]}}


@dataclass(frozen=True)
class Metadata(Checked):
    """A JSON object of the caller's, kept and passed to webhooks as it came."""

    def stated(self) -> JsonSchemaValue:
        return {
            **ANY_OBJECT,
            "description": f"A JSON object of yours, up to {MAX_METADATA_BYTES // 1024} KB, nested at most "
            f"{MAX_METADATA_DEPTH} levels deep, without control characters in its strings; passed to webhooks.",
        }

    def check(self, value: Any, info: core_schema.ValidationInfo) -> dict[str, Any]:
        texts, depth = _walk(value)
        if not isinstance(value, dict):
            raise _refuse("metadata", "must be a JSON object")
        if depth > MAX_METADATA_DEPTH:
            raise _refuse("metadata", "must nest at most {depth} levels deep", depth=MAX_METADATA_DEPTH)
        if len(json.dumps(value).encode()) > MAX_METADATA_BYTES:
            raise _refuse("metadata", "must be at most {size} bytes as JSON", size=MAX_METADATA_BYTES)
        if fault := next(filter(None, map(text.multi_line_fault, texts)), None):
            raise _refuse("metadata", "must not hold control characters; remove {fault}", fault=fault)
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


Label = Annotated[str, OneLine(LABEL_LENGTH)]
ExternalId = Annotated[str, OneLine(LABEL_LENGTH), Field(description="Your contact's id.")]
PrefillName = Annotated[str, OneLine(NAME_LENGTH)]
PrefillEmail = Annotated[str, EmailAddress()]
MaxUses = Annotated[int, Integer(1, MAX_USES)]
ExpiresIn = Annotated[
    int,
    Integer(
        1,
        int(MAX_EXPIRY.total_seconds()),
        f"must be a number of seconds from {{low}} to {{high}} ({TEN_YEARS})",
    ),
    Field(description=f"Seconds from now, at most {TEN_YEARS}; give this or expires_at, not both."),
]
CutoffHours = Annotated[int, Integer(0, MAX_CUTOFF_HOURS)]
JsonObject = Annotated[dict[str, Any], Metadata()]


class Shape(BaseModel):
    """A request shape: unknown fields are refused, each named."""

    model_config = ConfigDict(extra="forbid")


# --- The one definition of a valid link, whoever makes it. ---


class LinkSettings(Shape):
    """What the API, the dashboard and the CLI may set on a new link (None: the calendar's own rule)."""

    model_config = ConfigDict(frozen=True)

    label: Label | None = None
    max_uses: MaxUses = 1
    expires_at: Annotated[datetime, Instant(past_ok=True)] | None = None
    prefill_name: PrefillName | None = None
    prefill_email: PrefillEmail | None = None
    external_id: ExternalId | None = None
    metadata: JsonObject | None = None
    allow_cancel: bool | None = None
    allow_reschedule: bool | None = None
    change_cutoff_hours: CutoffHours | None = None

    @classmethod
    def checked(cls, now: datetime, **fields: Any) -> LinkSettings:
        """Validate settings given as Python values, an expiry as of ``now``; raise ValidationError."""
        return cls.model_validate(fields, context={"now": now})

    def columns(self) -> dict[str, Any]:
        """The settings as OneTimeLink's columns."""
        values = self.model_dump()
        values["link_metadata"] = values.pop("metadata")
        return values


# --- Requests of the API. ---


_BOTH_EXPIRIES = object()


class PrefillIn(Shape):
    name: PrefillName | None = None
    email: PrefillEmail | None = None


class LinkCreate(Shape):
    """The body of POST /one-time-links."""

    model_config = ConfigDict(
        json_schema_extra={
            "dependentSchemas": {"expires_at": {"not": {"required": ["expires_in"]}}},
            "examples": [
                {
                    "calendar": "intro-call",
                    "label": "Ana from Acme",
                    "expires_in": 604800,
                    "prefill": {"name": "Ana Silva", "email": "ana@example.com"},
                    "external_id": "crm-4711",
                    "metadata": {"deal": 4711, "stage": "demo"},
                }
            ],
        },
    )

    calendar: Annotated[str | int, CalendarRef(), Field(description="The calendar's slug or id.")]
    label: Label | None = None
    expires_at: (
        Annotated[
            datetime,
            Instant(),
            Field(
                description=f"A future instant, at most {TEN_YEARS} ahead; give this or expires_in, not both."
            ),
        ]
        | None
    ) = None
    expires_in: ExpiresIn | None = None
    max_uses: MaxUses = 1
    prefill: PrefillIn | None = None
    external_id: ExternalId | None = None
    metadata: JsonObject | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_expiry(cls, data: Any) -> Any:
        # Both given: expires_at is not read, and expires_in is refused for it.
        if (
            isinstance(data, dict)
            and data.get("expires_at") is not None
            and data.get("expires_in") is not None
        ):
            return {**data, "expires_at": None, "expires_in": _BOTH_EXPIRIES}
        return data

    @field_validator("expires_in", mode="before")
    @classmethod
    def _not_both(cls, value: Any) -> Any:
        if value is _BOTH_EXPIRIES:
            raise _refuse("expiry", "give expires_at or expires_in, not both")
        return value

    def link_fields(self, now: datetime) -> dict[str, Any]:
        """The new link's LinkSettings fields; expires_in counts from ``now``."""
        prefill = self.prefill or PrefillIn()
        expires_at = self.expires_at or (
            now + timedelta(seconds=self.expires_in) if self.expires_in else None
        )
        return {
            "label": self.label,
            "max_uses": self.max_uses,
            "expires_at": expires_at,
            "prefill_name": prefill.name,
            "prefill_email": prefill.email,
            "external_id": self.external_id,
            "metadata": self.metadata,
        }


class PageQuery(Shape):
    """The filters every list of the API takes."""

    model_config = ConfigDict(extra="ignore")

    calendar: str | None = Field(None, description="A calendar slug or id.")
    cursor: str | None = Field(None, description="next_cursor of the page before.")
    limit: Annotated[int, Integer(1, 100, in_text=True)] = 20


class LinkQuery(PageQuery):
    """The filters of GET /one-time-links."""

    status: LinkStatus | None = None
    external_id: Annotated[str, OneLine(None, as_is=True)] | None = None


class BookingQuery(PageQuery):
    """The filters of GET /bookings."""


class IdempotencyHeader(BaseModel):
    """The optional header of POST /one-time-links."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    idempotency_key: str | None = Field(
        None,
        alias="Idempotency-Key",
        json_schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN},
        description="1 to 255 printable ASCII characters. The same key and body replay the first "
        "answer for 24 hours; another body with the key is a 422.",
    )


# --- Answers: built from rows, dumped as JSON, the same for the API, the CLI and webhooks. ---

BOOKING_EXAMPLE: JsonDict = {
    "ref": "B7KQ2M",
    "calendar": "intro-call",
    "link_id": 42,
    "start": "2026-12-03T10:00:00Z",
    "end": "2026-12-03T10:30:00Z",
    "timezone": "Europe/Berlin",
    "invitee": {"name": "Ana Silva", "email": "ana@example.com"},
    "created_at": "2026-12-01T09:12:00Z",
    "cancelled_at": None,
}
LINK_EXAMPLE: JsonDict = {
    "id": 42,
    "calendar": "intro-call",
    "url": "https://book.example.com/l/3q2-Vb0cXyQ0o5tNw1uQ9m4dJm1L4o1i8ZbWm6c7Rk0",
    "label": "Ana from Acme",
    "status": "active",
    "uses": 0,
    "max_uses": 1,
    "expires_at": "2026-12-08T09:00:00Z",
    "created_at": "2026-12-01T09:00:00Z",
    "external_id": "crm-4711",
    "metadata": {"deal": 4711, "stage": "demo"},
    "prefill": {"name": "Ana Silva", "email": "ana@example.com"},
    "booking": None,
}
CALENDAR_EXAMPLE: JsonDict = {
    "id": 7,
    "slug": "intro-call",
    "name": "Intro call",
    "timezone": "Europe/Berlin",
    "duration_minutes": 30,
    "public_page_enabled": False,
    "scheduling_url": None,
    "permanent_url": None,
}
PROBLEM_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem_example(status: int, detail: str) -> dict[str, Any]:
    """A problem document as the API answers ``status``."""
    example: dict[str, Any] = {
        "type": "about:blank",
        "title": PROBLEM_TITLES[status],
        "status": status,
        "detail": detail + ".",
    }
    if status == 422:
        example["errors"] = {
            "prefill.email": "must be an email address",
            "max_uses": "must be an integer from 1 to 1000",
        }
    return example


def iso(value: datetime | None) -> str | None:
    """Format an instant as ISO 8601 UTC, or None."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json")
        return data


class Invitee(Answer):
    name: str
    email: str


class Booking(Answer):
    """A booking, as the API lists it and webhooks send it."""

    model_config = ConfigDict(json_schema_extra={"examples": [BOOKING_EXAMPLE]})

    ref: str
    calendar: str = Field(description="The calendar's slug.")
    link_id: int | None
    start: datetime
    end: datetime
    timezone: str
    invitee: Invitee
    created_at: datetime
    cancelled_at: datetime | None

    @classmethod
    def of(cls, booking: rows.Booking) -> Booking:
        return cls(
            ref=booking.ref,
            calendar=booking.calendar.slug,
            link_id=booking.link_id,
            start=booking.start_at,
            end=booking.end_at,
            timezone=booking.invitee_timezone,
            invitee=Invitee(name=booking.invitee_name, email=booking.invitee_email),
            created_at=booking.created_at,
            cancelled_at=booking.cancelled_at,
        )


class Prefill(Answer):
    name: str | None
    email: str | None


class Link(Answer):
    """The link object of PRODUCT.md; ``url`` is null once its key is retired."""

    model_config = ConfigDict(json_schema_extra={"examples": [LINK_EXAMPLE]})

    id: int
    calendar: str = Field(description="The calendar's slug.")
    url: str | None = Field(description="The one-time link; null once its secret is retired.")
    label: str | None
    status: LinkStatus
    uses: int = Field(json_schema_extra={"minimum": 0})
    max_uses: int = Field(json_schema_extra={"minimum": 1, "maximum": MAX_USES})
    expires_at: datetime | None
    created_at: datetime
    external_id: str | None
    metadata: Annotated[
        dict[str, Any] | None,
        WithJsonSchema(
            {"anyOf": [ANY_OBJECT, {"type": "null"}], "description": "What you gave at creation."}
        ),
    ]
    prefill: Prefill
    booking: Booking | None = Field(description="The latest booking made through the link.")

    @classmethod
    def of(cls, link: rows.OneTimeLink, status: LinkStatus, *, url: str | None) -> Link:
        latest = link.bookings[-1] if link.bookings else None
        return cls(
            id=link.id,
            calendar=link.calendar.slug,
            url=url,
            label=link.label,
            status=status,
            uses=link.uses,
            max_uses=link.max_uses,
            expires_at=link.expires_at,
            created_at=link.created_at,
            external_id=link.external_id,
            metadata=link.link_metadata,
            prefill=Prefill(name=link.prefill_name, email=link.prefill_email),
            booking=Booking.of(latest) if latest else None,
        )


class Calendar(Answer):
    """A calendar of the owner's."""

    model_config = ConfigDict(json_schema_extra={"examples": [CALENDAR_EXAMPLE]})

    id: int
    slug: str
    name: str
    timezone: str
    duration_minutes: int
    public_page_enabled: bool
    scheduling_url: str | None
    permanent_url: str | None

    @classmethod
    def of(cls, calendar: rows.Calendar, base: str) -> Calendar:
        public = calendar.public_page_enabled
        return cls(
            id=calendar.id,
            slug=calendar.slug,
            name=calendar.name,
            timezone=calendar.timezone,
            duration_minutes=calendar.duration_minutes,
            public_page_enabled=public,
            scheduling_url=f"{base}/c/{calendar.slug}" if public else None,
            permanent_url=f"{base}/p/{calendar.key}" if public else None,
        )


class LinkPage(Answer):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [LINK_EXAMPLE], "next_cursor": "NDI"}]}
    )

    items: list[Link]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last.")


class BookingPage(Answer):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [BOOKING_EXAMPLE], "next_cursor": None}]}
    )

    items: list[Booking]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last.")


class CalendarList(Answer):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [CALENDAR_EXAMPLE]}]})

    items: list[Calendar]


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"openapi": "3.1.0", "info": {"title": "OnceCal API", "version": "1.0.0"}}]
        },
    )


def _errors_have_no_default(schema: JsonDict) -> None:
    # errors is left out when there are none, never null.
    properties = schema["properties"]
    assert isinstance(properties, dict)
    errors = properties["errors"]
    assert isinstance(errors, dict)
    errors.pop("default", None)


class Problem(BaseModel):
    """RFC 9457 problem details, the API's only error shape."""

    model_config = ConfigDict(json_schema_extra=_errors_have_no_default)

    type: str
    title: str
    status: int
    detail: str
    errors: Annotated[
        dict[str, str] | None,
        WithJsonSchema(
            {
                **ANY_OBJECT,  # a plain dict in generated clients
                "additionalProperties": {"type": "string"},
                "description": "On a 422: each invalid field's path (prefill.email) and what is wrong with it.",
            }
        ),
    ] = None


# --- From pydantic's errors to the problem document's ``errors`` map. ---

_SENTENCES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_type": "must be a string",
    "string_too_long": "must be at most {max_length} characters",
}


def field_errors(error: ValidationError, shape: type[BaseModel] | None = None) -> dict[str, str]:
    """Each invalid field's path (``prefill.email``, ``links.3.expires_in``) and one sentence about it.

    With the request's ``shape``, a required field's sentence says what it
    is, and an object that is not one (or holds an unknown field) is told
    which fields it may hold.
    """
    errors: dict[str, str] = {}
    for item in error.errors(include_url=False):
        loc = [str(part) for part in item["loc"]]
        kind = item["type"]
        if kind == "extra_forbidden" and len(loc) > 1:
            kind, loc = "model_type", loc[:-1]
        field, nested = _field_at(shape, loc)
        if kind in ("model_type", "model_attributes_type") and nested is not None:
            sentence = f"must be an object with {' and '.join(nested.model_fields)}"
        elif kind == "missing" and field is not None and field.description:
            sentence = f"is required ({field.description.rstrip('.').lower()})"
        elif kind in ("enum", "literal_error"):
            choices = item.get("ctx", {}).get("expected", "").replace("'", "").replace(" or ", ", ")
            sentence = f"must be one of {choices}"
        else:
            template = _SENTENCES.get(kind)
            sentence = template.format(**item.get("ctx", {})) if template else item["msg"]
        errors.setdefault(".".join(loc) or "body", sentence)
    return errors


def _field_at(shape: type[BaseModel] | None, loc: list[str]) -> tuple[Any, type[BaseModel] | None]:
    """The field a path names in ``shape`` and the model it holds, if it holds one."""
    field = None
    model = shape
    for part in loc:
        if model is None or part not in model.model_fields:
            return None, None
        field = model.model_fields[part]
        model = next(
            (arg for arg in (field.annotation, *getattr(field.annotation, "__args__", ())) if _is_model(arg)),
            None,
        )
    return field, model


def _is_model(candidate: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, BaseModel)
