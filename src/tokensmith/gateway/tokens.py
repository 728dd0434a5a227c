"""The internal JWTs (phantom tokens) the gateway hands to upstreams instead of the outside
credential: RFC 9068 shape, signed by the gateway's own key, living ``internal_token_ttl`` seconds,
carrying only ``sub``, ``client_id``, ``scope`` and the route's ``aud``.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

from tokensmith.core.clock import Clock, SystemClock
from tokensmith.errors import ConfigError
from tokensmith.guard.cache import ExpiringCache
from tokensmith.guard.principal import Principal
from tokensmith.jose.jws import sign_jwt
from tokensmith.jose.keys import SigningKey, generate_signing_key, load_private_key

__all__ = ["InternalTokens", "load_or_create_key"]


class InternalTokens:
    def __init__(self, key: SigningKey, *, issuer: str, ttl: int, clock: Clock | None = None):
        self.key = key
        self.issuer = issuer
        self.ttl = ttl
        self._clock = clock or SystemClock()
        # One signature per identity and audience for half a lifetime, not one per request.
        self._minted: ExpiringCache[tuple[Any, ...], str] = ExpiringCache(10_000)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public_jwk()]}

    def mint(self, principal: Principal, audience: str) -> str:
        name = (
            principal.subject,
            principal.client_id,
            principal.token_id,
            principal.scopes,
            audience,
        )
        now = time.monotonic()
        cached = self._minted.get(name, now)
        if cached is not None:
            return cached
        issued = self._clock.now()
        exp = issued + self.ttl
        if principal.expires_at is not None:
            exp = min(exp, principal.expires_at)  # never outlive the outside credential
        claims = {
            "iss": self.issuer,
            "sub": principal.subject,
            "aud": audience,
            "iat": issued,
            "exp": exp,
            "jti": secrets.token_urlsafe(12),
            "client_id": principal.client_id or f"api-key:{principal.token_id}",
            "scope": principal.scope,
        }
        token = sign_jwt(self.key, claims, typ="at+jwt")
        self._minted.put(name, token, now + max(0, (exp - issued) // 2))
        return token


def load_or_create_key(path: Path, alg: str = "ES256") -> SigningKey:
    """The gateway's signing key from a PEM file; on first start, a new one (mode 0600)."""
    if path.exists():
        try:
            pem = path.read_bytes()
            probe = load_private_key("probe", alg, pem)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"gateway.signing_key_file {path}: unusable ({exc})") from None
        return load_private_key(probe.key.thumbprint(), alg, pem)  # kid as generate gives it
    key = generate_signing_key(alg)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_pem())
    except OSError as exc:
        raise ConfigError(f"gateway.signing_key_file {path}: cannot be written ({exc})") from None
    return key
