"""What every form shares: text is stripped, one line or plain; a validated field's text and errors."""

from __future__ import annotations

from typing import Any

from wtforms import Field, Form, StringField
from wtforms.validators import ValidationError

from oncecal import text


def strip(value: str | None) -> str | None:
    """A filter: drop the spaces around a text."""
    return value.strip() if isinstance(value, str) else value


def one_line(form: Form, field: Any) -> None:
    """Refuse line breaks, tabs and other control characters (see oncecal/text.py)."""
    fault = text.one_line_fault(field.data or "")
    if fault:
        raise ValidationError(f"This field takes one line of text; remove {fault}.")


def plain_text(form: Form, field: Any) -> None:
    """Refuse control characters other than line breaks and tabs, and lone surrogates."""
    fault = text.multi_line_fault(field.data or "")
    if fault:
        raise ValidationError(f"This text cannot hold control characters; remove {fault}.")


def entered(field: StringField) -> str:
    """Return the text of a required field of a validated form (WTForms types field data as optional)."""
    if field.data is None:
        raise ValueError(f"{field.name} holds no text: read it after its form is validated")
    return field.data


def add_error(field: Field, message: str) -> None:
    """Show ``message`` under a field of a validated form, as a validator's error (a service refused it)."""
    field.errors = [*field.errors, message]
