"""The absolute URLs the app hands out (links, pages, the API), and where a ?next= may lead."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, has_request_context, request


def base_url() -> str:
    """Return the origin that absolute links use: ONCECAL_BASE_URL, else the request's."""
    configured = current_app.config.get("BASE_URL")
    if configured:
        return str(configured).rstrip("/")
    if has_request_context():
        return request.host_url.rstrip("/")
    return "http://127.0.0.1:5000"


def link_url(token: str, base: str | None = None) -> str:
    """Return the absolute URL of a one-time link, on ``base`` or else base_url()."""
    return f"{base or base_url()}/l/{token}"


def scheduling_url(slug: str) -> str:
    """Return the absolute URL of a calendar's public scheduling page."""
    return f"{base_url()}/c/{slug}"


def permanent_url(key: str) -> str:
    """Return the absolute URL of a calendar's permanent link."""
    return f"{base_url()}/p/{key}"


def api_url() -> str:
    """Return the absolute URL the API's paths start from."""
    return f"{base_url()}/api/v1"


def safe_next(target: str | None, fallback: str) -> str:
    """Follow a ?next= or back= path only within this site."""
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and not urlsplit(target).netloc
    ):
        return target
    return fallback
