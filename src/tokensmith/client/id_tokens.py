"""The ID token a sign-in brings, validated as OpenID Connect Core §3.1.3.7 says: the one ID-token
validator of Tokensmith, for the CLI's sign-ins and the BFF's alike.

The signature is checked with the issuer's JWKS through the guard's pinned keys: the token must
name its key (``kid``), the algorithm is the key's, never the header's (RFC 8725 §3.1), and must
be one the metadata lists; header-borne keys are refused, and an access token (``typ``) is no ID
token. Then ``iss`` (exact), ``aud`` (holds our client id; ``azp`` when there are several),
``exp``, ``iat``, ``sub`` and, for the browser flows, ``nonce`` (constant-time).

``validate_id_token`` checks against keys at hand (a sign-in fetches them, ``fetch_keys``);
``IdTokenValidator`` does the same for asyncio code on a ``JwksCache``, fetched again once when
the issuer rotated to a key we have not seen.

A client that registered ID token encryption passes its private keys (``decryption_keys``,
``tokensmith.guard.load_decryption_keys`` reads them): an encrypted ID token (a JWE holding the
signed one, ``jose/jwe.py``) is opened first, then checked as above. An encrypted token without
a key, or one that does not open, is an IdTokenError.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from tokensmith.client.bounded import send_bounded
from tokensmith.client.errors import IdTokenError
from tokensmith.core.clock import Clock, SystemClock
from tokensmith.core.secrets import constant_time_equals
from tokensmith.guard.errors import GuardError
from tokensmith.guard.jwks import JwksCache, parse_jwks
from tokensmith.guard.jwt import MAX_TOKEN_CHARS
from tokensmith.guard.pinned import PinnedKey
from tokensmith.guard.segments import json_object, segment_bytes, segment_object, split_jws
from tokensmith.jose.jwe import DecryptionKey, InvalidEncryption, decrypt_jwt, is_jwe

__all__ = ["IdTokenValidator", "fetch_keys", "validate_id_token"]

_REFUSED_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"})
_ID_TYP = frozenset({"jwt", "application/jwt"})
# A key set is a few keys: a larger answer is refused unread (client/bounded.py).
_MAX_JWKS_BYTES = 256 * 1024


def fetch_keys(http: httpx.Client, jwks_uri: str) -> Mapping[str, PinnedKey]:
    request = http.build_request("GET", jwks_uri, headers={"accept": "application/json"})
    try:
        response, content = send_bounded(http, request, _MAX_JWKS_BYTES)
        response.raise_for_status()
        if content is None:
            raise ValueError("the key set is too large")
        return parse_jwks(json.loads(content))
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
    decryption_keys: Sequence[DecryptionKey] = (),
) -> dict[str, Any]:
    """The ID token's claims, or IdTokenError saying which check failed. ``nonce`` None: the
    flow sent none (the device flow); the token's own is then not looked at."""
    expected = _Expected(issuer, client_id, frozenset(algorithms), nonce, now, leeway)
    return _verify(_parse(_opened(token, decryption_keys)), keys, expected)


class IdTokenValidator:
    """ID tokens of one issuer for one client, checked on the issuer's cached JWKS."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        client_id: str,
        algorithms: Iterable[str] = (),
        leeway: int = 30,
        clock: Clock | None = None,
        decryption_keys: Sequence[DecryptionKey] = (),
    ) -> None:
        self.issuer = issuer
        self.decryption_keys = tuple(decryption_keys)
        self.client_id = client_id
        self.algorithms = frozenset(algorithms)
        self.leeway = leeway
        self._jwks = jwks
        self._clock = clock or SystemClock()

    async def validate(self, token: str, nonce: str | None) -> dict[str, Any]:
        """The claims of a valid ID token issued to us for this ``nonce``; IdTokenError else."""
        parsed = _parse(_opened(token, self.decryption_keys))
        try:
            await self._jwks.ensure_loaded()
            if parsed.kid not in self._jwks.keys and self._jwks.may_refetch_for_unknown_kid():
                await self._jwks.refresh()  # the issuer may have rotated since we last looked
        except GuardError:
            raise IdTokenError("the issuer's keys cannot be read") from None
        expected = _Expected(
            self.issuer, self.client_id, self.algorithms, nonce, self._clock.now(), self.leeway
        )
        return _verify(parsed, self._jwks.keys, expected)


@dataclass(frozen=True, slots=True)
class _Expected:
    issuer: str
    client_id: str
    algorithms: frozenset[str]  # empty: the key's own algorithm is the only check
    nonce: str | None
    now: int
    leeway: int


@dataclass(frozen=True, slots=True)
class _Parsed:
    signing_input: bytes
    header: dict[str, Any]
    body: str
    signature: bytes

    @property
    def kid(self) -> str:
        kid = self.header.get("kid")
        if not isinstance(kid, str):
            raise IdTokenError("the ID token header has no kid")
        return kid


def _opened(token: str, keys: Sequence[DecryptionKey]) -> str:
    """The signed ID token: the token itself, or what its encryption holds (OIDC Core §10.2)."""
    if not is_jwe(token):
        return token
    if not keys:
        raise IdTokenError("the ID token is encrypted and no decryption key is configured")
    try:
        return decrypt_jwt(token, keys)
    except InvalidEncryption as exc:
        raise IdTokenError(f"the ID token cannot be decrypted: {exc}") from None


def _parse(token: str) -> _Parsed:
    segments = split_jws(token) if len(token) <= MAX_TOKEN_CHARS else None
    if segments is None:
        raise IdTokenError("the ID token is not a signed JWT")
    head, body, sig = segments
    try:
        header = segment_object(head, "header")
        signature = segment_bytes(sig, "signature")
    except GuardError:
        raise IdTokenError("the ID token is malformed") from None
    return _Parsed(f"{head}.{body}".encode("ascii"), header, body, signature)


def _verify(parsed: _Parsed, keys: Mapping[str, PinnedKey], expected: _Expected) -> dict[str, Any]:
    key = _key_for(parsed, keys, expected.algorithms)
    if not key.verify(parsed.signing_input, parsed.signature):
        raise IdTokenError("the ID token's signature is invalid")
    try:
        claims = json_object(segment_bytes(parsed.body, "claims"), "claims")
    except GuardError:
        raise IdTokenError("the ID token is malformed") from None
    _check_claims(claims, expected)
    return claims


def _key_for(
    parsed: _Parsed, keys: Mapping[str, PinnedKey], algorithms: frozenset[str]
) -> PinnedKey:
    header = parsed.header
    if _REFUSED_HEADERS.intersection(header):
        raise IdTokenError("the ID token's header carries a refused member")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _ID_TYP):
        raise IdTokenError("the token is not an ID token (typ)")
    key = keys.get(parsed.kid)
    if key is None:
        raise IdTokenError("the ID token was signed by an unknown key")
    if header.get("alg") != key.alg or (algorithms and key.alg not in algorithms):
        raise IdTokenError("the ID token's algorithm is not the one its key and issuer allow")
    return key


def _check_claims(claims: dict[str, Any], expected: _Expected) -> None:
    if claims.get("iss") != expected.issuer:
        raise IdTokenError("the ID token is from another issuer")
    aud = claims.get("aud")
    audience = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if expected.client_id not in audience:
        raise IdTokenError("the ID token is for another client")
    if len(audience) > 1 and claims.get("azp") != expected.client_id:
        raise IdTokenError("the ID token's azp is not this client")
    now, leeway = expected.now, expected.leeway
    exp, iat = claims.get("exp"), claims.get("iat")
    if type(exp) is not int or exp + leeway <= now:
        raise IdTokenError("the ID token has expired")
    if type(iat) is not int or iat > now + leeway:
        raise IdTokenError("the ID token's iat is missing or in the future")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise IdTokenError("the ID token has no subject")
    if expected.nonce is not None:
        got = claims.get("nonce")
        if not isinstance(got, str) or not constant_time_equals(got, expected.nonce):
            raise IdTokenError("the ID token's nonce does not match this sign-in")
