"""The tokens a token exchange accepts (RFC 8693 §2.1), read into one shape: a ``Party``.

Only what this server issued is accepted: access tokens (JWTs verified against our own key ring,
their ``jti`` checked against revocation; opaque ones looked up by keyed hash), ID tokens
(signature, ``iss``, ``exp``, and their user still enabled), and Tokensmith API keys (through the
API-key verifier: revoked, expired and address-restricted keys are refused there). Anything
else, and anything expired, revoked or not ours, is ``invalid_grant``, with the reason kept in
the private detail only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tokensmith.accounts.users import UserStore
from tokensmith.apikeys.verifier import ApiKeyIdentity, ApiKeyRefused
from tokensmith.core.clock import Clock
from tokensmith.core.secrets import fingerprint, keyed_hash
from tokensmith.errors import InvalidGrant
from tokensmith.jose.jws import InvalidSignature, verify_jwt
from tokensmith.jose.keys import VerificationKey
from tokensmith.oauth.access_tokens import ACCESS_TOKEN_PREFIX, ACCESS_TOKEN_TYP
from tokensmith.oauth.clients import ClientStore
from tokensmith.oauth.exchange_policy import (
    ACCESS_TOKEN_TYPE,
    API_KEY_TOKEN_TYPE,
    ID_TOKEN_TYPE,
)
from tokensmith.oauth.tokens import TokenStore

__all__ = ["KeyChecker", "Party", "TokenReader"]


class KeyChecker(Protocol):
    """``apikeys/verifier.py: ApiKeyVerifier`` as the exchange needs it."""

    async def verify(self, presented: str, source_ip: str | None = None) -> ApiKeyIdentity: ...


@dataclass(frozen=True, slots=True)
class Party:
    """A subject or actor token, as verified: who it names and what it allows."""

    kind: str  # the token type URI it was presented as
    subject: str
    client_id: str | None  # the client it was issued to (an API key: none)
    scope: frozenset[str] | None  # None: the token carries no scope (an ID token)
    audience: tuple[str, ...]
    expires_at: int | None
    act: Mapping[str, Any] | None = None  # its own delegation chain (RFC 8693 §4.1)
    key_id: str | None = None  # an API key's public id
    fingerprint: str = ""  # names the token in the audit trail, never its value
    jkt: str | None = None  # the DPoP key an access token is bound to (``cnf.jkt``, RFC 9449 §6)


class TokenReader:
    def __init__(
        self,
        *,
        issuer: str,
        clients: ClientStore,
        tokens: TokenStore,
        users: UserStore,
        keys: KeyChecker,
        verification_keys: Callable[[], Mapping[str, VerificationKey]],
        pepper: bytes,
        clock: Clock,
        leeway: int,
    ) -> None:
        self._issuer = issuer
        self._clients = clients
        self._tokens = tokens
        self._users = users
        self._keys = keys
        self._verification_keys = verification_keys
        self._pepper = pepper
        self._clock = clock
        self._leeway = leeway

    async def read(self, value: str, kind: str, source: str) -> Party:
        if kind == ACCESS_TOKEN_TYPE:
            party = await self._access_token(value)
        elif kind == ID_TOKEN_TYPE:
            party = await self._id_token(value)
        elif kind == API_KEY_TOKEN_TYPE:
            party = await self._api_key(value, source)
        else:  # the grant checks the type first; an unknown one is no token of ours
            raise InvalidGrant("the token is not valid", detail="unknown token type")
        return party

    async def _access_token(self, value: str) -> Party:
        now = self._clock.now()
        if value.startswith(ACCESS_TOKEN_PREFIX):
            record = await self._tokens.get_by_hash(keyed_hash(self._pepper, value))
            if record is None or record.format != "opaque":
                raise _refused("unknown opaque access token")
            claims: dict[str, Any] = dict(record.claims or {})
            jti, client_id, subject = record.jti, record.client_id, record.subject
            scope, audience = record.scope, tuple(record.audience.split())
            expires_at, revoked = record.expires_at, record.revoked_at is not None
        else:
            claims = self._jwt(value, ACCESS_TOKEN_TYP, now)
            try:
                jti, client_id = str(claims["jti"]), str(claims["client_id"])
                subject, scope = str(claims["sub"]), str(claims.get("scope", ""))
                audience, expires_at = _audience(claims["aud"]), int(claims["exp"])
            except (KeyError, TypeError, ValueError):
                raise _refused("access token claims are malformed") from None
            stored = await self._tokens.get_by_jti(jti)
            revoked = stored is not None and stored.revoked_at is not None
        if revoked:
            raise _refused("the subject or actor token is revoked")
        if expires_at <= now:
            raise _refused("the subject or actor token has expired")
        # A deleted client's tokens are dead, stored or not (SECURITY.md case 62).
        if await self._clients.get(client_id) is None:
            raise _refused("the token's client no longer exists")
        act = claims.get("act")
        return Party(
            kind=ACCESS_TOKEN_TYPE,
            subject=subject,
            client_id=client_id,
            scope=frozenset(scope.split()),
            audience=audience,
            expires_at=expires_at,
            act=act if isinstance(act, dict) else None,
            fingerprint=jti,
            jkt=_bound_key(claims),
        )

    async def _id_token(self, value: str) -> Party:
        now = self._clock.now()
        claims = self._jwt(value, "JWT", now)
        try:
            subject, expires_at = str(claims["sub"]), int(claims["exp"])
            audience = _audience(claims["aud"])
            azp = claims.get("azp")
        except (KeyError, TypeError, ValueError):
            raise _refused("ID token claims are malformed") from None
        # An access token is signed by the same key: only an ID token has none of its marks.
        if "at_hash" not in claims or "client_id" in claims or "scope" in claims:
            raise _refused("not an ID token")
        if expires_at <= now:
            raise _refused("the ID token has expired")
        user = await self._users.get(subject)
        if user is None or user.disabled:
            raise _refused("the ID token's user is gone or disabled")
        return Party(
            kind=ID_TOKEN_TYPE,
            subject=subject,
            client_id=str(azp) if isinstance(azp, str) else audience[0],
            scope=None,
            audience=audience,
            expires_at=expires_at,
            fingerprint=fingerprint(value),
        )

    async def _api_key(self, value: str, source: str) -> Party:
        try:
            identity = await self._keys.verify(value, source)
        except ApiKeyRefused as refused:
            raise _refused(f"API key refused: {refused.reason}") from None
        return Party(
            kind=API_KEY_TOKEN_TYPE,
            subject=identity.owner,
            client_id=None,
            scope=identity.scopes,
            audience=identity.audiences,
            expires_at=identity.expires_at,
            key_id=identity.key_id,
            fingerprint=identity.key_id,
        )

    def _jwt(self, value: str, typ: str, now: int) -> dict[str, Any]:
        """A JWT we signed, of header ``typ``, issued by us, not from the future."""
        try:
            header, claims = verify_jwt(value, self._verification_keys())
        except InvalidSignature as exc:
            raise _refused(f"not a token of ours ({exc})") from None
        if header.get("typ") != typ:
            raise _refused(f"typ {str(header.get('typ'))[:20]!r} where {typ} was expected")
        if claims.get("iss") != self._issuer:
            raise _refused("another issuer's token")
        iat = claims.get("iat")
        if not isinstance(iat, int) or iat > now + self._leeway:
            raise _refused("iat missing or in the future")
        return claims


def _audience(aud: object) -> tuple[str, ...]:
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        return tuple(aud)
    raise ValueError("aud")


def _bound_key(claims: Mapping[str, Any]) -> str | None:
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


def _refused(detail: str) -> InvalidGrant:
    # One public description for every reason: which check failed is no business of the caller.
    return InvalidGrant("the subject or actor token is not valid", detail=detail)
