"""The objects each app builds once from its config: link keys, form tokens, the token throttle, the secret box."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from oncecal.services.formtokens import FormTokens
from oncecal.services.secretbox import SecretBox
from oncecal.services.throttle import FailureThrottle
from oncecal.services.tokens import LinkKeys


@dataclass(frozen=True)
class Runtime:
    link_keys: LinkKeys
    form_tokens: FormTokens
    token_throttle: FailureThrottle
    secrets: SecretBox


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
        secrets=SecretBox(secret, fallbacks),
    )


def runtime() -> Runtime:
    """Return the current app's Runtime."""
    objects: Runtime = current_app.extensions["oncecal"]
    return objects
