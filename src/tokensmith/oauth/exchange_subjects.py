"""The tokens a token exchange accepts (RFC 8693 §2.1), read into one shape: a ``Party``.

Only what this server issued is accepted: access tokens (found as introspection finds them:
JWTs verified against our own key ring and their ``jti`` checked against revocation; opaque
ones, and JWTs encrypted to their resource, by keyed hash), ID tokens
(signature, ``iss``, ``exp``, their user still enabled; the scope is what that user consented
to for the token's client, since an ID token proves a sign-in and grants nothing), and
Tokensmith API keys (through the API-key verifier: revoked, expired and address-restricted keys
are refused there). Anything else, and anything expired, revoked or not ours, is
``invalid_grant``, with the reason kept in the private detail only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tokensmith.accounts.users import UserStore
from tokensmith.apikeys.verifier import ApiKeyIdentity, ApiKeyRefused
from tokensmith.core.clock import Clock
from tokensmith.core.secrets import fingerprint
from tokensmith.errors import InvalidGrant
from tokensmith.jose.jws import InvalidSignature, verify_jwt
from tokensmith.jose.keys import VerificationKey
from tokensmith.oauth.exchange_policy import (
    ACCESS_TOKEN_TYPE,
    API_KEY_TOKEN_TYPE,
    ID_TOKEN_TYPE,
)
from tokensmith.oauth.grants import ConsentStore
from tokensmith.oauth.introspection import TokenInspector

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
    scope: frozenset[str] | None  # None: the token carries no scope
    audience: tuple[str, ...]
    expires_at: int | None
    act: Mapping[str, Any] | None = None  # its own delegation chain (RFC 8693 §4.1)
    key_id: str | None = None  # an API key's public id
    # The DPoP key it is bound to (RFC 9449 ``cnf.jkt``); "" for a binding we cannot read.
    dpop_jkt: str | None = None
    fingerprint: str = ""  # names the token in the audit trail, never its value


class TokenReader:
    def __init__(
        self,
        *,
        issuer: str,
        inspector: TokenInspector,
        users: UserStore,
        consents: ConsentStore,
        keys: KeyChecker,
        verification_keys: Callable[[], Mapping[str, VerificationKey]],
        clock: Clock,
        leeway: int,
    ) -> None:
        self._issuer = issuer
        self._inspector = inspector
        self._users = users
        self._consents = consents
        self._keys = keys
        self._verification_keys = verification_keys
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
        # The lookup introspection and the server's own resources make: JWT, opaque or JWE,
        # revoked, expired, or its client deleted (SECURITY.md case 62) all come back as None.
        record = await self._inspector.active_token(value)
        if record is None:
            raise _refused("not an active access token of ours")
        claims: Mapping[str, Any] = record.claims or {}
        act = claims.get("act")
        return Party(
            kind=ACCESS_TOKEN_TYPE,
            subject=record.subject,
            client_id=record.client_id,
            scope=frozenset(record.scope.split()),
            audience=tuple(record.audience.split()),
            expires_at=record.expires_at,
            act=act if isinstance(act, dict) else None,
            dpop_jkt=_bound_key(claims),
            fingerprint=record.jti,
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
        # A password change ends every refresh family (refresh_rotation.py); the sign-ins before
        # it must not live on as ID tokens traded for fresh access tokens. (``_jwt`` checked iat.)
        if user.password_changed_at > int(claims["iat"]):
            raise _refused("the ID token predates the user's password change")
        client_id = str(azp) if isinstance(azp, str) else audience[0]
        # Only what the user granted this client: the client's registered scope would hand it,
        # as the user, scopes the user never saw on a consent page.
        consent = await self._consents.get(subject, client_id)
        granted = frozenset(consent.scope.split()) if consent is not None else frozenset()
        return Party(
            kind=ID_TOKEN_TYPE,
            subject=subject,
            client_id=client_id,
            scope=granted,
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


def _refused(detail: str) -> InvalidGrant:
    # One public description for every reason: which check failed is no business of the caller.
    return InvalidGrant("the subject or actor token is not valid", detail=detail)


def _bound_key(claims: Mapping[str, Any]) -> str | None:
    """``cnf.jkt``, or "" when there is a ``cnf`` we cannot honour (never read as unbound)."""
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
    return jkt if isinstance(jkt, str) and jkt else ""
