"""Serve the embed loader script."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, send_from_directory

bp = Blueprint("widget", __name__)


@bp.get("/widget/embed.js")
def embed_js() -> Response:
    """Serve widget/embed.js with an ETag and a short cache lifetime."""
    response = send_from_directory(
        Path(current_app.root_path) / "widget", "embed.js", max_age=300, mimetype="text/javascript"
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
