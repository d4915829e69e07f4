"""RFC 9457 problem details, the API's only error shape."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from oncecal.schemas import PROBLEM_TITLES


class Problem(Exception):
    """An API error answered as application/problem+json."""

    def __init__(self, status: int, detail: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def problem_response(
    status: int, detail: str, errors: dict[str, str] | None = None, **headers: str
) -> Response:
    """Render a problem document."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": PROBLEM_TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response
