"""Access tokens: RFC 9068 JWTs, or opaque handles stored by keyed hash (per client).

A JWT is verifiable by any resource server from the JWKS and is not written to the database when
nothing else needs it; revoking one records its ``jti``. An opaque token means nothing outside this
server: it is a 256-bit random value behind the ``tsat_`` prefix, kept only as a keyed hash.
A JWT for a resource that takes encrypted tokens is then encrypted to it and always stored by
the keyed hash of its value (``oauth/resource_encryption.py``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from tokensmith.core.clock import Clock
from tokensmith.core.scopes import format_scope
from tokensmith.core.secrets import keyed_hash, random_token
from tokensmith.jose.jwe import encrypt_jwt
from tokensmith.jose.jws import sign_jwt
from tokensmith.jose.keys import SigningKey
from tokensmith.oauth.clients import Client
from tokensmith.oauth.resource_encryption import ResourceEncryption
from tokensmith.oauth.tokens import IssuedToken

__all__ = [
    "ACCESS_TOKEN_PREFIX",
    "ACCESS_TOKEN_TYP",
    "AccessToken",
    "AccessTokenIssuer",
    "TokenContext",
]

ACCESS_TOKEN_PREFIX = "tsat_"  # a type prefix, so secret scanners can find leaked tokens
ACCESS_TOKEN_TYP = "at+jwt"  # RFC 9068 §2.1
# Claims a response hook may not set: they are the issuer's own (RFC 9068 §2.2).
RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope"})
_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TokenContext:
    """What a grant decided: who the token is for, what it may do, and for how long."""

    client: Client
    subject: str
    scope: frozenset[str]
    audience: tuple[str, ...]
    lifetime: int
    family_id: str | None = None
    code_hash: bytes | None = None
    grant_type: str = ""  # for the audit trail
    # Set by response hooks (``oauth/issuance.py``): a DPoP binding's ``cnf``, a delegation's
    # ``act``, and the token_type the response names.
    claims: Mapping[str, Any] = field(default_factory=lambda: _NO_CLAIMS)
    token_type: str = "Bearer"

    def __post_init__(self) -> None:
        clash = RESERVED_CLAIMS.intersection(self.claims)
        if clash:
            raise ValueError(f"a hook may not set the {sorted(clash)[0]} claim")
        if self.claims:  # a copy: the caller's dict, changed after this check, changes nothing
            object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    expires_in: int
    scope: str
    record: IssuedToken | None  # what must be stored before the token is handed out
    jti: str  # names the token in the audit trail


class AccessTokenIssuer:
    def __init__(
        self,
        *,
        issuer: str,
        signing_key: Callable[[], SigningKey],
        pepper: bytes,
        clock: Clock,
        encryption: ResourceEncryption | None = None,
    ) -> None:
        self.issuer = issuer
        self._signing_key = signing_key
        self._pepper = pepper
        self._clock = clock
        self._encryption = encryption or ResourceEncryption()

    def check_audience(self, client: Client, audience: tuple[str, ...]) -> None:
        """InvalidTarget now for an audience ``issue`` would refuse: for a grant to call before
        it spends anything (SECURITY.md case 64)."""
        if client.access_token_format == "jwt":
            self._encryption.key_for(audience)

    def issue(self, ctx: TokenContext) -> AccessToken:
        now = self._clock.now()
        jti = secrets.token_urlsafe(16)
        scope = format_scope(ctx.scope)
        audience = " ".join(ctx.audience)

        def by_hash(value: str, kind: Literal["jwt", "opaque"]) -> AccessToken:
            """A token found by the keyed hash of its value: opaque, or a JWE we cannot open
            again. Its record keeps cnf, act and the like, which the value does not show."""
            record = IssuedToken(
                jti,
                ctx.client.client_id,
                ctx.subject,
                scope,
                audience,
                kind,
                now,
                now + ctx.lifetime,
                token_hash=keyed_hash(self._pepper, value),
                family_id=ctx.family_id,
                code_hash=ctx.code_hash,
                claims=dict(ctx.claims) or None,
            )
            return AccessToken(value, ctx.lifetime, scope, record, jti)

        if ctx.client.access_token_format == "opaque":
            return by_hash(random_token(32, ACCESS_TOKEN_PREFIX), "opaque")
        claims = {
            "iss": self.issuer,
            "sub": ctx.subject,
            "aud": ctx.audience[0] if len(ctx.audience) == 1 else list(ctx.audience),
            "exp": now + ctx.lifetime,
            "iat": now,
            "jti": jti,
            "client_id": ctx.client.client_id,
            "scope": scope,
            **ctx.claims,
        }
        recipient = self._encryption.key_for(ctx.audience)  # InvalidTarget before signing
        value = sign_jwt(self._signing_key(), claims, typ=ACCESS_TOKEN_TYP)
        if recipient is not None:
            # We cannot open it again: introspection and revocation find it by its hash.
            return by_hash(encrypt_jwt(value, recipient), "jwt")
        # Tokens tied to a code or a refresh family are recorded so they can be revoked with it.
        tied = ctx.family_id is not None or ctx.code_hash is not None
        stored = (
            IssuedToken(
                jti,
                ctx.client.client_id,
                ctx.subject,
                scope,
                audience,
                "jwt",
                now,
                now + ctx.lifetime,
                family_id=ctx.family_id,
                code_hash=ctx.code_hash,
                claims=dict(ctx.claims) or None,
            )
            if tied
            else None
        )
        return AccessToken(value, ctx.lifetime, scope, stored, jti)
