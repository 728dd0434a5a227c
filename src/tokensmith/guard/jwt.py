"""RFC 9068 JWT access tokens, checked the RFC 8725 way on a tight, synchronous path.

Order: size cap, shape, header rules, key by ``kid``, algorithm pinned to that key, signature,
then claims (``iss``, ``aud``, ``exp``, ``nbf``, ``iat``, required claims). No header can bring
its own key: ``jwk``, ``jku``, ``x5u`` and ``x5c`` are refused, never fetched. ``crit`` names
extensions we would have to understand (RFC 7515 §4.1.11); we understand none, so it is refused.
Validated tokens are remembered until min(exp, ``cache_seconds``) so a repeat costs a dict lookup.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from tokensmith.core.clock import Clock, SystemClock
from tokensmith.core.secrets import b64url_is_canonical
from tokensmith.guard.audience import audience_of, describe_refusal
from tokensmith.guard.cache import ExpiringCache
from tokensmith.guard.errors import InvalidToken, TokenExpired, UnknownKeyId
from tokensmith.guard.pinned import PinnedKey
from tokensmith.guard.principal import Principal

__all__ = ["MAX_TOKEN_CHARS", "REQUIRED_CLAIMS", "JwtValidator", "KeySource", "StaticKeys"]

MAX_TOKEN_CHARS = 8192
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")  # RFC 9068 §2.2
_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_REFUSED_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64"})
_REFUSED_HEADERS |= frozenset({"zip", "enc"})  # compression and JWE never belong in an access JWT
_MAX_HEADERS = 64
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_decode_json = json.JSONDecoder().decode
_ACCESS_TYP = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068 §4, compared lower-case


class KeySource(Protocol):
    """Where the validator reads the current keys by ``kid``; a JWKS cache, or fixed keys."""

    @property
    def keys(self) -> Mapping[str, PinnedKey]: ...


class StaticKeys:
    def __init__(self, keys: Iterable[PinnedKey]) -> None:
        self.keys: Mapping[str, PinnedKey] = {key.kid: key for key in keys}


class JwtValidator:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audiences: Iterable[str],
        leeway: int = 30,
        required_claims: Iterable[str] = REQUIRED_CLAIMS,
        cache_entries: int = 10_000,
        cache_seconds: int = 300,
        clock: Clock | None = None,
    ) -> None:
        self.issuer = issuer
        self.audiences = frozenset(audiences)
        if not issuer or not self.audiences:
            raise ValueError("a JWT validator needs an issuer and at least one audience")
        self.leeway = leeway
        self.required_claims = tuple(required_claims)
        self._required = frozenset(required_claims)
        self.cache_seconds = cache_seconds
        self._keys = keys
        self._clock = clock or SystemClock()
        self._cache: ExpiringCache[str, Principal] = ExpiringCache(cache_entries)
        # Tokens of one issuer share a handful of header segments: each is judged once.
        self._header_keys: dict[str, PinnedKey] = {}

    def validate(self, token: str) -> Principal:
        """The principal of a valid access token; raises InvalidToken (or a subclass) otherwise."""
        now = self._clock.now()
        cached = self._cache.get(token, now)  # keyed by the token itself: a hash would cost more
        if cached is not None:
            return cached
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("the access token is too large")
        if not _JWS.fullmatch(token):
            raise InvalidToken("the access token is not a signed JWT")
        head, body, sig = token.split(".")
        key = self._header_keys.get(head) or self._judge_header(head)
        if not key.verify(token[: len(head) + len(body) + 1].encode("ascii"), _b64(sig)):
            raise InvalidToken("the access token's signature is invalid")
        claims = _json_segment(body, "claims")
        principal = self._check_claims(claims, now)
        expires_at = principal.expires_at or now
        self._cache.put(token, principal, min(expires_at, now + self.cache_seconds))
        return principal

    def forget(self) -> None:
        """Drop remembered tokens and headers, e.g. when the key set changed."""
        self._cache.clear()
        self._header_keys = {}

    def _judge_header(self, head: str) -> PinnedKey:
        key = self._key_for(_json_segment(head, "header"))
        if len(self._header_keys) >= _MAX_HEADERS:
            self._header_keys = {}
        self._header_keys[head] = key
        return key

    def _key_for(self, header: dict[str, Any]) -> PinnedKey:
        refused = _REFUSED_HEADERS.intersection(header)
        if refused:
            raise InvalidToken(f"the token header carries {sorted(refused)[0]!r}, never accepted")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TYP:
            raise InvalidToken("the token is not an access token (typ must be at+jwt)")
        keys = self._keys.keys
        kid = header.get("kid")
        if isinstance(kid, str):
            key = keys.get(kid)
            if key is None:
                raise UnknownKeyId("the token was signed by an unknown key")
        elif kid is None and len(keys) == 1:
            key = next(iter(keys.values()))  # RFC 7515 §4.1.4: kid is optional with one key
        else:
            raise InvalidToken("the token header has no usable kid")
        if header.get("alg") != key.alg:  # RFC 8725 §3.1: the key decides, not the header
            raise InvalidToken("the token's algorithm does not match its key")
        return key

    def _check_claims(self, claims: dict[str, Any], now: int) -> Principal:
        if not self._required <= claims.keys():
            missing = sorted(self._required - claims.keys())[0]
            raise InvalidToken(f"the access token has no {missing!r} claim")
        if claims.get("iss") != self.issuer:  # exact match: a prefix or substring is another issuer
            raise InvalidToken("the access token is from another issuer")
        audience = audience_of(claims.get("aud"))
        if self.audiences.isdisjoint(audience):
            raise InvalidToken(describe_refusal(audience, self.audiences))
        exp = _number(claims.get("exp"))
        if exp is None:
            raise InvalidToken("the access token has no valid 'exp' claim")
        if exp + self.leeway <= now:
            raise TokenExpired("the access token expired")
        latest = now + self.leeway
        for name in ("nbf", "iat"):
            if name in claims:
                value = _number(claims[name])
                if value is None:
                    raise InvalidToken(f"the access token's {name!r} claim is not a number")
                if value > latest:
                    raise InvalidToken(f"the access token's {name!r} claim is in the future")
        return _principal(claims, audience, exp)

    @property
    def cached_tokens(self) -> int:
        return len(self._cache)


def _principal(claims: dict[str, Any], audience: tuple[str, ...], exp: int) -> Principal:
    scope = claims.get("scope", "")
    subject, client_id, jti = claims.get("sub"), claims.get("client_id"), claims.get("jti")
    if type(scope) is not str or type(subject) is not str or not subject:
        raise InvalidToken("the access token's sub or scope claim is malformed")
    return Principal(
        subject,
        client_id if type(client_id) is str else None,
        frozenset(scope.split()),
        audience,
        claims["iss"],
        exp,
        jti if type(jti) is str else None,
        "jwt",
        claims,
    )


def _number(value: object) -> int | None:
    """A NumericDate (RFC 7519 §2): JSON true is no number, and Python's json reads NaN."""
    if type(value) is int:
        return value
    if type(value) is float and math.isfinite(value):
        return int(value)
    return None


def _b64(segment: str, what: str = "signature") -> bytes:
    # The caller matched the base64url alphabet already (no padding, no other character);
    # a2b_base64 is the C fast path. It ignores unused trailing bits, so the one spelling of a
    # segment is checked first (SECURITY.md case 66, the rule the server's decoders apply).
    if not b64url_is_canonical(segment):
        raise InvalidToken(f"the token's {what} is not canonical base64url")
    try:
        data = segment.encode("ascii").translate(_FROM_URLSAFE)
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        raise InvalidToken(f"the token's {what} is not base64url") from None


def _json_segment(segment: str, what: str) -> dict[str, Any]:
    try:
        value = _decode_json(_b64(segment, what).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting is no JSON we read
        raise InvalidToken(f"the token's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"the token's {what} is not a JSON object")
    return value
