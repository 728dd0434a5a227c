"""ID tokens (OIDC Core §2, §3.1.3.6): who logged in, when, how, for which client.

For a client that registered ID token encryption the signed token is then encrypted to its key
(OIDC Core §10.2: signed first, then encrypted; ``oidc/encryption.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from tokensmith.core.clock import Clock
from tokensmith.core.secrets import b64url
from tokensmith.jose.jws import sign_jwt
from tokensmith.jose.keys import SigningKey
from tokensmith.oidc.encryption import Recipient

__all__ = ["IdTokenIssuer", "token_hash"]

# OIDC Core §3.1.3.6: the hash of the alg's own hash function; Ed25519 signs with SHA-512.
_HASHES = {
    "ES256": hashlib.sha256,
    "RS256": hashlib.sha256,
    "Ed25519": hashlib.sha512,
    "EdDSA": hashlib.sha512,
}


def token_hash(value: str, alg: str) -> str:
    """``at_hash``: the left half of the hash of the token's ASCII, base64url."""
    digest = _HASHES[alg](value.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])


class IdTokenIssuer:
    def __init__(
        self, *, issuer: str, signing_key: Callable[[], SigningKey], clock: Clock, lifetime: int
    ) -> None:
        self._issuer = issuer
        self._signing_key = signing_key
        self._clock = clock
        self._lifetime = lifetime

    def issue(
        self,
        *,
        client_id: str,
        subject: str,
        auth_time: int | None,
        nonce: str | None,
        access_token: str,
        amr: tuple[str, ...] = ("pwd",),
        extra: dict[str, Any] | None = None,
        recipient: Recipient | None = None,
    ) -> str:
        key = self._signing_key()
        now = self._clock.now()
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject,
            "aud": client_id,
            "azp": client_id,
            "exp": now + self._lifetime,
            "iat": now,
            "at_hash": token_hash(access_token, key.alg),
            "amr": list(amr),
        }
        if auth_time is not None:
            claims["auth_time"] = auth_time
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(extra or {})
        signed = sign_jwt(key, claims, typ="JWT")
        return recipient.seal(signed) if recipient is not None else signed
