"""RFC 9068 JWT access tokens, checked the RFC 8725 way on a tight, synchronous path.

Order: size cap, shape, header rules, key by ``kid``, algorithm pinned to that key, strict
base64url of the signature and payload (``segments.py``), signature (joserfc's algorithm on the
pinned key, ``pinned.py``), then claims (``iss``, ``aud``, ``exp``, ``nbf``, ``iat``, required
claims). No header can bring its own key: ``jwk``, ``jku``, ``x5u`` and ``x5c`` are refused, never
fetched. ``crit`` names extensions we would have to understand (RFC 7515 §4.1.11); we understand
none, so it is refused. Validated tokens are remembered until min(exp, ``cache_seconds``) so a
repeat costs a dict lookup.

An encrypted token (a compact JWE holding the signed JWT, RFC 7519 §5.2) is opened first with
the resource's own private keys (``decryption_keys``, ``jose/jwe.py``: its allowlist, no
``zip``); the JWS inside is then checked exactly as an unencrypted one. A JWE arriving where no
key is configured, and with ``require_encryption`` a plain JWS, is refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from tokensmith.core.clock import Clock, SystemClock
from tokensmith.guard.audience import audience_of, describe_refusal
from tokensmith.guard.cache import ExpiringCache
from tokensmith.guard.errors import InvalidToken, TokenExpired, UnknownKeyId
from tokensmith.guard.pinned import PinnedKey
from tokensmith.guard.principal import Principal, new_principal
from tokensmith.guard.segments import json_object, segment_bytes, segment_object, split_jws
from tokensmith.jose.jwe import DecryptionKey, InvalidEncryption, decrypt_jwt, is_jwe

__all__ = ["MAX_TOKEN_CHARS", "REQUIRED_CLAIMS", "JwtValidator", "KeySource", "StaticKeys"]

MAX_TOKEN_CHARS = 8192
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")  # RFC 9068 §2.2
_REFUSED_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64"})
_REFUSED_HEADERS |= frozenset({"zip", "enc"})  # compression and JWE never belong in an access JWT
_MAX_HEADERS = 64
_MAX_SCOPE_SETS = 256
_ACCESS_TYP = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068 §4, compared lower-case


class KeySource(Protocol):
    """Where the validator reads the current keys by ``kid``; a JWKS cache, or fixed keys."""

    @property
    def keys(self) -> Mapping[str, PinnedKey]: ...


class StaticKeys:
    def __init__(self, keys: Iterable[PinnedKey]) -> None:
        self.keys: Mapping[str, PinnedKey] = {key.kid: key for key in keys}


class JwtValidator:
    # What the header's typ must be (compared lower-case), and the refusal when it is not:
    # a subclass for another kind of token (guard/txn_tokens.py) names its own.
    token_types: frozenset[str] = _ACCESS_TYP
    typ_refusal = "the token is not an access token (typ must be at+jwt)"

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
        decryption_keys: Sequence[DecryptionKey] = (),
        require_encryption: bool = False,
    ) -> None:
        self.issuer = issuer
        if require_encryption and not decryption_keys:
            raise ValueError("require_encryption needs the decryption_keys to open tokens with")
        self.decryption_keys = tuple(decryption_keys)
        self.require_encryption = require_encryption
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
        # Tokens of one issuer share a handful of header segments: each is judged once. They
        # share a handful of scope strings too: each is split into a set once.
        self._header_keys: dict[str, PinnedKey] = {}
        self._scope_sets: dict[str, frozenset[str]] = {}

    def validate(self, token: str) -> Principal:
        """The principal of a valid access token; raises InvalidToken (or a subclass) otherwise."""
        now = self._clock.now()
        cached = self._cache.get(token, now)  # keyed by the token itself: a hash would cost more
        if cached is not None:
            return cached
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("the access token is too large")
        signed = self._open(token)
        segments = split_jws(signed)
        if segments is None:
            raise InvalidToken("the access token is not a signed JWT")
        head, body, sig = segments
        key = self._header_keys.get(head) or self._judge_header(head)
        signature, payload = segment_bytes(sig, "signature"), segment_bytes(body, "claims")
        if not key.verify(signed[: len(head) + len(body) + 1].encode("ascii"), signature):
            raise InvalidToken("the access token's signature is invalid")
        principal = self._check_claims(json_object(payload, "claims"), now)
        expires_at, until = principal.expires_at or now, now + self.cache_seconds
        self._cache.put(token, principal, expires_at if expires_at <= until else until)
        return principal

    def _open(self, token: str) -> str:
        """The signed JWT: the token itself, or what its encryption holds."""
        if not is_jwe(token):
            if self.require_encryption:
                raise InvalidToken("the access token must be encrypted")
            return token
        if not self.decryption_keys:
            raise InvalidToken("encrypted access tokens are not accepted here")
        try:
            return decrypt_jwt(token, self.decryption_keys)
        except InvalidEncryption as exc:
            raise InvalidToken(str(exc)) from None

    def forget(self) -> None:
        """Drop remembered tokens and headers, e.g. when the key set changed."""
        self._cache.clear()
        self._header_keys = {}
        self._scope_sets = {}

    def _judge_header(self, head: str) -> PinnedKey:
        key = self._key_for(segment_object(head, "header"))
        if len(self._header_keys) >= _MAX_HEADERS:
            self._header_keys = {}
        self._header_keys[head] = key
        return key

    def _key_for(self, header: dict[str, Any]) -> PinnedKey:
        refused = _REFUSED_HEADERS.intersection(header)
        if refused:
            raise InvalidToken(f"the token header carries {sorted(refused)[0]!r}, never accepted")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in self.token_types:
            raise InvalidToken(self.typ_refusal)
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
        issuer = claims.get("iss")
        if issuer != self.issuer:  # exact match: a prefix or substring is another issuer
            raise InvalidToken("the access token is from another issuer")
        aud = claims.get("aud")
        audience = (aud,) if type(aud) is str else audience_of(aud)
        if self.audiences.isdisjoint(audience):
            raise InvalidToken(describe_refusal(audience, self.audiences))
        exp = claims.get("exp")
        if type(exp) is not int and (exp := _number(exp)) is None:
            raise InvalidToken("the access token has no valid 'exp' claim")
        if exp + self.leeway <= now:
            raise TokenExpired("the access token expired")
        latest = now + self.leeway
        # An absent nbf or iat reads as ``latest`` and passes; anything but an int in range takes
        # the careful path, which refuses or accepts it as the NumericDate it is.
        nbf, iat = claims.get("nbf", latest), claims.get("iat", latest)
        if type(nbf) is not int or nbf > latest:
            _check_not_after(nbf, "nbf", latest)
        if type(iat) is not int or iat > latest:
            _check_not_after(iat, "iat", latest)
        return self._principal(claims, audience, issuer, exp)

    def _principal(
        self, claims: dict[str, Any], audience: tuple[str, ...], issuer: str, exp: int
    ) -> Principal:
        """The principal of claims whose registered claims have passed."""
        scope = claims.get("scope", "")
        subject, client_id, jti = claims.get("sub"), claims.get("client_id"), claims.get("jti")
        if type(scope) is not str or type(subject) is not str or not subject:
            raise InvalidToken("the access token's sub or scope claim is malformed")
        return new_principal(
            subject,
            client_id if type(client_id) is str else None,
            self._scope_sets.get(scope) or self._scope_set(scope),
            audience,
            issuer,
            exp,
            jti if type(jti) is str else None,
            "jwt",
            claims,
        )

    def _scope_set(self, scope: str) -> frozenset[str]:
        scopes = frozenset(scope.split())
        if len(self._scope_sets) >= _MAX_SCOPE_SETS:
            self._scope_sets = {}
        self._scope_sets[scope] = scopes
        return scopes

    @property
    def cached_tokens(self) -> int:
        return len(self._cache)


def _check_not_after(value: object, name: str, latest: int) -> None:
    number = _number(value)
    if number is None:
        raise InvalidToken(f"the access token's {name!r} claim is not a number")
    if number > latest:
        raise InvalidToken(f"the access token's {name!r} claim is in the future")


def _number(value: object) -> int | None:
    """A NumericDate (RFC 7519 §2): JSON true is no number, and Python's json reads NaN."""
    if type(value) is int:
        return value
    if type(value) is float and math.isfinite(value):
        return int(value)
    return None
