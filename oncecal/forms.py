"""Field filters and validators every form shares: text is stripped, one line or plain."""

from __future__ import annotations

from typing import Any

from wtforms import Form
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
