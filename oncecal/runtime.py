"""Per-app objects the blueprints and the CLI share: keys, form tokens, throttles."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, has_request_context, request

from oncecal.services.formtokens import FormTokens
from oncecal.services.throttle import FailureThrottle
from oncecal.services.tokens import LinkKeys


@dataclass(frozen=True)
class Runtime:
    link_keys: LinkKeys
    form_tokens: FormTokens
    token_throttle: FailureThrottle


def init_runtime(app: Flask) -> None:
    """Build the app's Runtime from its configuration."""
    secret = app.config["SECRET_KEY"]
    fallbacks = app.config["SECRET_KEY_FALLBACKS"]
    app.extensions["oncecal"] = Runtime(
        link_keys=LinkKeys(secret, fallbacks),
        form_tokens=FormTokens(secret, fallbacks),
        token_throttle=FailureThrottle(
            app.config["RATELIMIT_STORAGE_URI"],
            app.config["TOKEN_FAILURE_LIMIT"],
            namespace="token-404",
            key_prefix=app.config.get("RATELIMIT_KEY_PREFIX") or "",
        ),
    )


def runtime() -> Runtime:
    """Return the current app's Runtime."""
    return current_app.extensions["oncecal"]


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


def webhooks_private_allowed() -> bool:
    """Tell whether webhooks may target private and loopback addresses."""
    return str(current_app.config.get("WEBHOOK_ALLOW_PRIVATE", "")).lower() in ("1", "true", "yes")
