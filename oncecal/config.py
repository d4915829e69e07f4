"""Configuration: defaults, then ONCECAL_* environment variables, then test overrides."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, current_app


class DefaultConfig:
    ENV_NAME = "development"
    SECRET_KEY: str | None = None
    SECRET_KEY_FALLBACKS: list[str] = []
    DATABASE_URL: str | None = None
    BASE_URL: str | None = None
    RATELIMIT_STORAGE_URI = "memory://"
    # A 429 from Flask-Limiter (login, signup, password reset) says when to retry.
    RATELIMIT_HEADERS_ENABLED = True
    # A shared storage (Redis) that goes down must not turn logins into 500s:
    # each process then counts on its own until it is back.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True
    # Failed token look-ups allowed per client before 429 (PRODUCT.md rule 7).
    TOKEN_FAILURE_LIMIT = "20 per 10 minutes"
    SQLITE_BUSY_TIMEOUT_MS = 15_000
    FORM_TOKEN_MAX_AGE = 24 * 3600
    MAX_CONTENT_LENGTH = 64 * 1024
    SMTP_URL: str | None = None
    MAIL_FROM = "OnceCal <no-reply@oncecal.localhost>"
    WEBHOOK_ALLOW_PRIVATE = False
    # Calendar connections (oncecal/services/connections.py): loopback and
    # private servers refused unless ONCECAL_CONNECTIONS_ALLOW_PRIVATE=1.
    CONNECTIONS_ALLOW_PRIVATE = False
    CONNECTIONS_TIMEOUT_SECONDS = 10.0
    # READ COMMITTED (PostgreSQL's default, pinned here whatever the server's
    # is): a booking goes on in the request's read transaction, and its
    # statements must see what other bookings committed since (oncecal/db.py).
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True, "isolation_level": "READ COMMITTED"}
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # Flask-Compress (oncecal/compression.py): text goes out as Brotli or
    # gzip, whichever the client prefers; answers under 500 bytes stay plain.
    COMPRESS_MIMETYPES = ["text/html", "text/css", "text/javascript", "application/json"]
    COMPRESS_ALGORITHM = ["br", "gzip"]
    # Brotli quality 2: a booking page (36 KB) shrinks to 3.4 KB in 0.1 ms;
    # the default 4 saves 150 bytes more for three times the CPU per request.
    COMPRESS_BR_LEVEL = 2
    # Pages and API answers carry no ETag, so Flask-Compress's conditional
    # handling (make_conditional) would only cost time; the static files that
    # have one answer 304 through oncecal/compression.py.
    COMPRESS_EVALUATE_CONDITIONAL_REQUEST = False


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill app.config from defaults, the environment and test overrides."""
    app.config.from_object(DefaultConfig)
    app.config["ENV_NAME"] = os.environ.get("ONCECAL_ENV", "development")
    app.config.from_prefixed_env("ONCECAL")
    if test_config:
        app.config.update(test_config)

    production = app.config["ENV_NAME"] == "production"
    if not str(app.config.get("SECRET_KEY") or "").strip():
        if production:
            raise RuntimeError("ONCECAL_SECRET_KEY must be set when ONCECAL_ENV=production")
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))
    fallbacks = app.config.get("SECRET_KEY_FALLBACKS") or []
    if isinstance(fallbacks, str):
        fallbacks = [f for f in fallbacks.split(",") if f]
    app.config["SECRET_KEY_FALLBACKS"] = list(fallbacks)

    if production:
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["PREFERRED_URL_SCHEME"] = "https"

    url = app.config.get("DATABASE_URL") or _default_sqlite_url(Path(app.instance_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    if url.startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {}


def webhooks_private_allowed() -> bool:
    """Tell whether webhooks may target private and loopback addresses (ONCECAL_WEBHOOK_ALLOW_PRIVATE)."""
    return str(current_app.config.get("WEBHOOK_ALLOW_PRIVATE", "")).lower() in ("1", "true", "yes")


def _default_sqlite_url(instance: Path) -> str:
    instance.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance / 'oncecal.sqlite3'}"


def _instance_secret(instance: Path) -> str:
    """Return a per-installation development secret, made once and kept."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        # Several server processes may start at once: publish atomically.
        draft = instance / f".secret_key.{os.getpid()}"
        draft.write_text(secrets.token_hex(32))
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
