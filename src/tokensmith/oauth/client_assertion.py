"""``private_key_jwt`` client authentication (RFC 7523 §2.2, §3; OIDC Core §9).

The assertion is a JWS signed by a key from the client's registered JWKS, the algorithm pinned to
that key (so ``none`` and HMAC cannot pass). Its claims must say: issuer and subject are the
client, the audience is our issuer identifier and nothing else, it expires soon, it was not made
in the future, and its ``jti`` has not been seen before (kept until the assertion expires).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from tokensmith.errors import InvalidClient
from tokensmith.jose.jwe import KEY_MANAGEMENT, encryption_key
from tokensmith.jose.jws import InvalidSignature, verify_jwt
from tokensmith.jose.keys import VerificationKey, verification_key_from_jwk

__all__ = [
    "ASSERTION_TYPE",
    "MAX_CLIENT_KEYS",
    "AssertionReplayStore",
    "client_keys",
    "is_encryption_jwk",
    "parse_client_jwks",
    "verify_client_assertion",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_CLIENT_KEYS = 10
MAX_ASSERTION_LIFETIME = 3600  # Authlib and others sign for an hour; jti retention is bounded by it
_FAILED = "client authentication failed"


class AssertionReplayStore(Protocol):
    async def remember(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record a jti; False if this client already used it."""
        ...

    async def purge_expired(self, before: int, limit: int = ...) -> int: ...


def parse_client_jwks(text: str) -> dict[str, Any]:
    """Validate a client's JWKS at registration; raise ValueError saying what is wrong."""
    if len(text) > 64 * 1024:
        raise ValueError("the JWKS is larger than 64 KiB")
    try:
        jwks = json.loads(text)
    except ValueError:
        raise ValueError("the JWKS is not JSON") from None
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError('the JWKS needs a non-empty "keys" list')
    if len(keys) > MAX_CLIENT_KEYS:
        raise ValueError(f"the JWKS has more than {MAX_CLIENT_KEYS} keys")
    for jwk in keys:
        if not isinstance(jwk, dict) or any(m in jwk for m in ("d", "p", "q", "k")):
            raise ValueError("the JWKS must hold public keys only")
        if is_encryption_jwk(jwk):
            encryption_key(jwk)  # key type, alg allowlist, RSA size, curve (jose/jwe.py)
        else:
            verification_key_from_jwk(jwk)  # alg, kid, key type and RSA size
    kids = [jwk["kid"] for jwk in keys if "kid" in jwk]
    if len(set(kids)) != len(kids):
        raise ValueError("key ids in the JWKS must be unique")
    return {"keys": keys}


def client_keys(jwks: Mapping[str, Any] | None) -> dict[str, VerificationKey]:
    """The client's signing keys; its encryption keys never verify an assertion."""
    keys = [jwk for jwk in (jwks or {}).get("keys", []) if not is_encryption_jwk(jwk)]
    return {k.kid: k for k in (verification_key_from_jwk(jwk) for jwk in keys)}


def is_encryption_jwk(jwk: Mapping[str, Any]) -> bool:
    """A registered key meant for encrypting to the client (OIDC Registration §2: ``use``)."""
    return jwk.get("use") == "enc" or jwk.get("alg") in KEY_MANAGEMENT


async def verify_client_assertion(
    assertion: str,
    *,
    client_id: str,
    keys: Mapping[str, VerificationKey],
    issuer: str,
    now: int,
    leeway: int,
    replay: AssertionReplayStore,
) -> None:
    sole = next(iter(keys.values())) if len(keys) == 1 else None
    try:
        _, claims = verify_jwt(assertion, keys, sole_key=sole)
    except InvalidSignature as exc:
        raise InvalidClient(_FAILED, detail=f"client assertion: {exc}") from None
    _check_claims(claims, client_id, issuer, now, leeway)
    if not await replay.remember(client_id, str(claims["jti"]), int(claims["exp"])):
        raise InvalidClient(_FAILED, detail="client assertion: jti replayed")


def _check_claims(
    claims: dict[str, Any], client_id: str, issuer: str, now: int, leeway: int
) -> None:
    def refuse(why: str) -> InvalidClient:
        return InvalidClient(_FAILED, detail=f"client assertion: {why}")

    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise refuse("iss and sub must both be the client_id")
    audience = claims.get("aud")
    if audience != issuer and audience != [issuer]:
        raise refuse("aud must be the issuer identifier")
    exp, iat, jti = claims.get("exp"), claims.get("iat", now), claims.get("jti")
    if not isinstance(exp, int) or not isinstance(iat, int):
        raise refuse("exp and iat must be numbers")
    if exp <= now - leeway or exp > now + MAX_ASSERTION_LIFETIME + leeway:
        raise refuse("exp is past or too far ahead")
    if iat > now + leeway:
        raise refuse("iat is in the future")
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, int) or nbf > now + leeway):
        raise refuse("nbf is in the future")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
        raise refuse("jti is missing")
