"""Signed, one-off booking form ids that double as CSRF tokens.

The booking pages live in cross-site iframes where the browser drops
third-party cookies, so their CSRF token cannot lean on the session: it is a
random form id, bound to one link or calendar, signed with the app secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from itsdangerous import BadSignature, URLSafeTimedSerializer


class InvalidFormToken(Exception):
    """The form token is missing, forged, for another page, or too old."""


class FormTokens:
    def __init__(self, secret: str, fallbacks: Sequence[str] = ()) -> None:
        # itsdangerous signs with the last key and accepts any of them.
        self._serializer = URLSafeTimedSerializer([*fallbacks, secret], salt="booking-form")

    def issue(self, scope: str) -> str:
        """Return a new token for one render of the form of ``scope``."""
        return self._serializer.dumps({"f": secrets.token_urlsafe(16), "s": scope})

    def read(self, token: str, scope: str, max_age: int) -> str:
        """Return the form id inside a valid token for ``scope``."""
        try:
            data = self._serializer.loads(token, max_age=max_age)
        except BadSignature:
            raise InvalidFormToken from None
        if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("f"), str):
            raise InvalidFormToken
        return data["f"]
