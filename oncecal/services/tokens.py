"""One-time link tokens: derived, never stored (PRODUCT.md rules 6 and 7).

token = base64url(HMAC-SHA256(link key, nonce)); the link key is derived from
the app secret, and each link stores its random nonce, the id of the key that
made it and the token's SHA-256. Rotating the secret (SECRET_KEY_FALLBACKS)
keeps the old key ids known, so old links can still be copied again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

NONCE_BYTES = 16  # 128 bits of randomness per link
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _derive(secret: str | bytes, purpose: bytes) -> bytes:
    return hmac.new(_as_bytes(secret), purpose, hashlib.sha256).digest()


def hash_token(token: str) -> str:
    """Return the hex SHA-256 under which a token is looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str) -> bool:
    """Tell whether a string has the shape of a link token."""
    return TOKEN_PATTERN.fullmatch(token) is not None


@dataclass(frozen=True)
class NewToken:
    token: str
    nonce: str
    key_id: str
    token_hash: str


class LinkKeys:
    """The link keys derived from the current secret and its fallbacks."""

    def __init__(self, secret: str | bytes, fallbacks: Sequence[str | bytes] = ()) -> None:
        self._keys: dict[str, bytes] = {}
        for candidate in (secret, *fallbacks):
            key_id = _derive(candidate, b"oncecal/link-key-id/v1").hex()[:12]
            self._keys.setdefault(key_id, _derive(candidate, b"oncecal/link-key/v1"))
        self.current_key_id = next(iter(self._keys))

    def new_token(self) -> NewToken:
        """Make a fresh token with the current key."""
        nonce = secrets.token_hex(NONCE_BYTES)
        token = self._token(self._keys[self.current_key_id], nonce)
        return NewToken(token, nonce, self.current_key_id, hash_token(token))

    def token_for(self, nonce: str, key_id: str) -> str | None:
        """Rebuild a link's token, or None when its key is no longer known."""
        key = self._keys.get(key_id)
        return None if key is None else self._token(key, nonce)

    def matches(self, token: str, nonce: str, key_id: str) -> bool:
        """Check in constant time that a token is the one this link was given."""
        expected = self.token_for(nonce, key_id)
        return expected is not None and hmac.compare_digest(expected, token)

    @staticmethod
    def _token(key: bytes, nonce: str) -> str:
        digest = hmac.new(key, bytes.fromhex(nonce), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
