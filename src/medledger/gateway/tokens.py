"""Short-lived bearer tokens: a JWT (RFC 7519) signed with HMAC-SHA256 (JWS ``HS256``,
RFC 7515) under a key that lives only in the memory of the object that issued it.

The key is 32 random bytes made when the :class:`Minter` is created and never written
anywhere, so a server restart makes every earlier token worthless: callers sign in again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from medledger.errors import Unauthenticated

_HEADER = {"alg": "HS256", "typ": "JWT"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _compact(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


_SIGNED_HEADER = _b64(_compact(_HEADER))


class Minter:
    """Signs claims into tokens and reads back only the tokens it signed."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def mint(self, claims: dict[str, Any]) -> str:
        """The compact JWS of ``claims``."""
        signing_input = f"{_SIGNED_HEADER}.{_b64(_compact(claims))}"
        return f"{signing_input}.{_b64(self._mac(signing_input))}"

    def claims(self, token: str) -> dict[str, Any]:
        """The claims of a token this minter signed, or :class:`Unauthenticated` (malformed,
        or signed by another key: another server, or this one before a restart). Expiry is
        the caller's to check."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _SIGNED_HEADER:
            raise Unauthenticated("the bearer token is not a token of this gateway: sign in again")
        try:
            mac = _unb64(parts[2])
        except ValueError:
            raise Unauthenticated("the bearer token is malformed: sign in again") from None
        if not hmac.compare_digest(mac, self._mac(f"{parts[0]}.{parts[1]}")):
            raise Unauthenticated(
                "the bearer token was not issued by this gateway (or was issued before it "
                "restarted): sign in again"
            )
        claims = json.loads(_unb64(parts[1]))  # signed by us: well formed
        if not isinstance(claims, dict):
            raise Unauthenticated("the bearer token is malformed: sign in again")
        return claims

    def _mac(self, signing_input: str) -> bytes:
        return hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
