"""Secrets at rest: connection passwords and feed URLs, encrypted with a key derived from the app secret.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``), under a key
derived from the app secret like the link keys; each row stores the id of
the key that sealed it, so a secret moved to ONCECAL_SECRET_KEY_FALLBACKS
still opens what it sealed, and ``seal`` always uses the current one. A
database dump alone opens nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken


def _derive(secret: str | bytes, purpose: bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, purpose, hashlib.sha256).digest()


@dataclass(frozen=True)
class Sealed:
    token: str
    key_id: str


class SecretBox:
    """Seals and opens short secrets with keys derived from the current secret and its fallbacks."""

    def __init__(self, secret: str | bytes, fallbacks: Sequence[str | bytes] = ()) -> None:
        self._keys: dict[str, Fernet] = {}
        for candidate in (secret, *fallbacks):
            key_id = _derive(candidate, b"oncecal/secretbox-key-id/v1").hex()[:12]
            key = base64.urlsafe_b64encode(_derive(candidate, b"oncecal/secretbox-key/v1"))
            self._keys.setdefault(key_id, Fernet(key))
        self.current_key_id = next(iter(self._keys))

    def seal(self, text: str) -> Sealed:
        """Encrypt ``text`` with the current key."""
        return Sealed(self._keys[self.current_key_id].encrypt(text.encode()).decode(), self.current_key_id)

    def open(self, token: str, key_id: str) -> str | None:
        """Decrypt a sealed secret; None when its key is no longer known or it was tampered with."""
        fernet = self._keys.get(key_id)
        if fernet is None:
            return None
        try:
            return fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None
