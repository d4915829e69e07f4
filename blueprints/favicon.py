"""Serve the favicon where browsers and scanners look for it without a <link>."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, send_from_directory

bp = Blueprint("favicon", __name__)


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Serve static/favicon.ico, cached for a day."""
    return send_from_directory(
        Path(current_app.root_path) / "static", "favicon.ico", max_age=86400, mimetype="image/x-icon"
    )
