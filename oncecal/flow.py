"""Query parameters that travel through the booking flow (PRODUCT.md "URLs")."""

from __future__ import annotations

from datetime import date
from typing import Any, TypedDict

from flask import request

from oncecal.embed import is_origin
from oncecal.text import one_line_fault
from oncecal.timezones import is_valid_zone

THEMES = ("light", "dark", "auto")


class FlowArgs(TypedDict, total=False):
    embed: str
    host: str
    tz: str
    theme: str


def flow_args() -> FlowArgs:
    """Return the valid embed, host, tz and theme parameters of this request."""
    args: FlowArgs = {}
    if request.args.get("embed") == "1":
        args["embed"] = "1"
    host = request.args.get("host", "")
    if is_origin(host):
        args["host"] = host
    tz = request.args.get("tz")
    if tz and is_valid_zone(tz):
        args["tz"] = tz
    theme = request.args.get("theme")
    if theme in THEMES:
        args["theme"] = theme
    return args


def first_day_arg(today: date, last_day: date) -> date | None:
    """Return the ``date`` parameter, or None when absent, malformed or outside today..last_day.

    PRODUCT.md: a date the page cannot use is ignored, so 9999-12-31 shows
    the first week instead of a week past the end of the calendar.
    """
    try:
        first_day = date.fromisoformat(request.args.get("date", ""))
    except ValueError:
        return None
    return first_day if today <= first_day <= last_day else None


def prefill_args() -> dict[str, Any]:
    """Return the name and email the URL asks to prefill; a value that is not one line is ignored."""
    return {
        k: request.args[k][:254]
        for k in ("name", "email")
        if request.args.get(k) and not one_line_fault(request.args[k])
    }
