"""The ID token a sign-in brings, validated as OpenID Connect Core §3.1.3.7 says.

The signature is checked with the issuer's JWKS through the guard's pinned keys (the algorithm
is the key's, never the header's, RFC 8725 §3.1) and must be one the metadata lists; then
``iss`` (exact), ``aud`` (holds our client id; ``azp`` when there are several), ``exp``,
``iat`` and, for the browser flow, ``nonce`` (constant-time).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from tokensmith.client.errors import IdTokenError
from tokensmith.guard.errors import GuardError
from tokensmith.guard.jwks import parse_jwks
from tokensmith.guard.pinned import PinnedKey
from tokensmith.guard.segments import json_object, segment_bytes, segment_object, split_jws

__all__ = ["fetch_keys", "validate_id_token"]

_MAX_ID_TOKEN = 16 * 1024
_REFUSED_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"})


def fetch_keys(http: httpx.Client, jwks_uri: str) -> Mapping[str, PinnedKey]:
    try:
        response = http.get(jwks_uri, headers={"accept": "application/json"})
        response.raise_for_status()
        return parse_jwks(response.json())
    except (httpx.HTTPError, ValueError) as exc:
        raise IdTokenError(f"the issuer's keys cannot be read ({type(exc).__name__})") from None


def validate_id_token(
    token: str,
    keys: Mapping[str, PinnedKey],
    *,
    issuer: str,
    client_id: str,
    algorithms: Iterable[str],
    nonce: str | None,
    now: int,
    leeway: int = 60,
) -> dict[str, Any]:
    """The ID token's claims, or IdTokenError saying which check failed."""
    try:
        return _validate(token, keys, issuer, client_id, frozenset(algorithms), nonce, now, leeway)
    except GuardError:
        raise IdTokenError("the ID token is malformed") from None


def _validate(
    token: str,
    keys: Mapping[str, PinnedKey],
    issuer: str,
    client_id: str,
    algorithms: frozenset[str],
    nonce: str | None,
    now: int,
    leeway: int,
) -> dict[str, Any]:
    segments = split_jws(token) if len(token) <= _MAX_ID_TOKEN else None
    if segments is None:
        raise IdTokenError("the ID token is not a signed JWT")
    head, body, sig = segments
    key = _key_for(segment_object(head, "header"), keys, algorithms)
    signature = segment_bytes(sig, "signature")
    if not key.verify(f"{head}.{body}".encode("ascii"), signature):
        raise IdTokenError("the ID token's signature is invalid")
    claims = json_object(segment_bytes(body, "claims"), "claims")
    _check_claims(claims, issuer, client_id, nonce, now, leeway)
    return claims


def _key_for(
    header: dict[str, Any], keys: Mapping[str, PinnedKey], algorithms: frozenset[str]
) -> PinnedKey:
    if _REFUSED_HEADERS.intersection(header):
        raise IdTokenError("the ID token's header carries a refused member")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None and kid is None and len(keys) == 1:
        key = next(iter(keys.values()))
    if key is None:
        raise IdTokenError("the ID token was signed by an unknown key")
    if header.get("alg") != key.alg or (algorithms and key.alg not in algorithms):
        raise IdTokenError("the ID token's algorithm is not the one its key and issuer allow")
    return key


def _check_claims(
    claims: dict[str, Any], issuer: str, client_id: str, nonce: str | None, now: int, leeway: int
) -> None:
    if claims.get("iss") != issuer:
        raise IdTokenError("the ID token is from another issuer")
    aud = claims.get("aud")
    audience = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audience:
        raise IdTokenError("the ID token is for another client")
    if len(audience) > 1 and claims.get("azp") != client_id:
        raise IdTokenError("the ID token's azp is not this client")
    exp, iat = claims.get("exp"), claims.get("iat")
    if type(exp) is not int or exp + leeway <= now:
        raise IdTokenError("the ID token has expired")
    if type(iat) is not int or iat > now + leeway:
        raise IdTokenError("the ID token's iat is missing or in the future")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise IdTokenError("the ID token has no subject")
    if nonce is not None:
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise IdTokenError("the ID token's nonce does not match this sign-in")
