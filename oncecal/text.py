"""What a text field may hold: one line (names, emails, labels, phone, location) or several (notes).

Every entry (booking form, API, CLI, dashboard) asks here, so a value that
later becomes an email header, a log line or a CSV cell cannot be split in
two. One line: no control character (C0, DEL, C1, tab included), no line or
paragraph separator (U+2028, U+2029) and no unpaired surrogate (which no
database stores). Several lines: line feeds, carriage returns (browsers send
a textarea's lines as CRLF), tabs and the two separators are kept; the other
controls and unpaired surrogates are refused.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, the line and paragraph separators, lone surrogates:
# a character class that Python and JSON Schema (the OpenAPI document) both read.
NOT_ONE_LINE = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\ud800-\\udfff"
_NOT_ONE_LINE = re.compile(f"[{NOT_ONE_LINE}]")
# The same less tab, LF and CR, and the separators.
_NOT_MULTI_LINE = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# What str.splitlines() breaks at: shown to the user as "the line break".
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _describe(char: str, *, one_line: bool) -> str:
    if one_line and char in _LINE_BREAKS:
        return "the line break"
    if one_line and char == "\t":
        return "the tab"
    if 0xD800 <= ord(char) <= 0xDFFF:
        return f"the unpaired surrogate U+{ord(char):04X}"
    return f"the control character U+{ord(char):04X}"


def one_line_fault(value: str) -> str | None:
    """Name the first character a one-line field may not hold ("the line break"), or None if it fits."""
    found = _NOT_ONE_LINE.search(value)
    return _describe(found.group(), one_line=True) if found else None


def multi_line_fault(value: str) -> str | None:
    """Name the first character a multi-line field may not hold, or None if it fits."""
    found = _NOT_MULTI_LINE.search(value)
    return _describe(found.group(), one_line=False) if found else None


def as_one_line(value: str) -> str:
    """Join a stored value's lines with spaces and drop its controls: for rows written before this rule."""
    return " ".join(_NOT_ONE_LINE.sub(" ", value).split())
