"""Serve the favicon where browsers and scanners look for it without a <link>."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask import Blueprint, Response, current_app

bp = Blueprint("favicon", __name__)


@cache
def _icon(static_folder: Path) -> bytes:
    # A few hundred bytes, read once: no file handle per request for a test client to leave open.
    return (static_folder / "favicon.ico").read_bytes()


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Serve static/favicon.ico, cached for a day."""
    response = Response(_icon(Path(current_app.root_path) / "static"), mimetype="image/x-icon")
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response
