"""Token introspection (RFC 7662) and revocation (RFC 7009) of the tokens we issue.

Introspection answers ``{"active": false}`` and nothing else for anything unknown, expired,
revoked, malformed or not ours (RFC 7662 §2.2), so the endpoint is no oracle. Revocation answers
success for tokens it does not know (RFC 7009 §2.2) and revokes only the caller's own tokens.

A token whose client has been deleted is inactive, stored or not (SECURITY.md case 62): a JWT
from the client_credentials grant has no record to revoke, so the client's existence is checked.
A JWT encrypted to its resource is recorded at issue and found by the keyed hash of its value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tokensmith.core.clock import Clock
from tokensmith.core.secrets import fingerprint, keyed_hash
from tokensmith.errors import InvalidRequest
from tokensmith.jose.jwe import is_jwe
from tokensmith.jose.jws import InvalidSignature, verify_jwt
from tokensmith.jose.keys import VerificationKey
from tokensmith.oauth.access_tokens import ACCESS_TOKEN_PREFIX, ACCESS_TOKEN_TYP, RESERVED_CLAIMS
from tokensmith.oauth.clients import Client, ClientStore
from tokensmith.oauth.issuance import REFRESH_TOKEN_PREFIX
from tokensmith.oauth.pipeline import Answer
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.tokens import IssuedToken, RefreshStore, TokenStore

__all__ = ["INACTIVE", "InspectionEndpoints", "TokenInspector"]

INACTIVE: dict[str, Any] = {"active": False}


@dataclass(frozen=True, slots=True)
class _Known:
    record: IssuedToken
    active: bool


class TokenInspector:
    def __init__(
        self,
        *,
        issuer: str,
        clients: ClientStore,
        tokens: TokenStore,
        refresh: RefreshStore,
        verification_keys: Callable[[], Mapping[str, VerificationKey]],
        pepper: bytes,
        clock: Clock,
        leeway: int,
    ) -> None:
        self._issuer = issuer
        self._clients = clients
        self._tokens = tokens
        self._refresh = refresh
        self._keys = verification_keys
        self._pepper = pepper
        self._clock = clock
        self._leeway = leeway

    async def introspect(self, token: str, caller: Client) -> dict[str, Any]:
        if token.startswith(REFRESH_TOKEN_PREFIX):
            return await self._introspect_refresh(token, caller)
        known = await self._find(token)
        if known is None or not known.active:
            return dict(INACTIVE)
        record = known.record
        audience = record.audience.split(" ")
        body: dict[str, Any] = {
            "active": True,
            "iss": self._issuer,
            "sub": record.subject,
            "client_id": record.client_id,
            "scope": record.scope,
            "aud": audience[0] if len(audience) == 1 else audience,
            "exp": record.expires_at,
            "iat": record.issued_at,
            "jti": record.jti,
            "token_type": "Bearer",
        }
        return _with_claims(body, record.claims)

    async def active_token(self, token: str) -> IssuedToken | None:
        """The record of an access token that is valid now, or None (for resource endpoints)."""
        known = await self._find(token)
        return known.record if known is not None and known.active else None

    async def revoke(self, token: str, caller: Client) -> None:
        if token.startswith(REFRESH_TOKEN_PREFIX):
            await self._revoke_refresh(token, caller)
            return
        known = await self._find(token)
        if known is None or known.record.client_id != caller.client_id:
            return  # unknown, or another client's: nothing to do, and nothing revealed
        # A JWT that was never stored gets a record now, so introspection sees it revoked.
        await self._tokens.record_revocation(known.record, self._clock.now())

    async def _introspect_refresh(self, token: str, caller: Client) -> dict[str, Any]:
        """Refresh tokens are described only to the client that holds them."""
        found = await self._refresh.get(keyed_hash(self._pepper, token))
        if found is None:
            return dict(INACTIVE)
        refresh, family = found
        now = self._clock.now()
        live = refresh.rotated_at is None and family.revoked_at is None and refresh.expires_at > now
        if not live or family.client_id != caller.client_id:
            return dict(INACTIVE)
        return {
            "active": True,
            "iss": self._issuer,
            "sub": family.subject,
            "client_id": family.client_id,
            "scope": refresh.scope,
            "exp": refresh.expires_at,
            "iat": refresh.issued_at,
            "token_type": "refresh_token",
        }

    async def _revoke_refresh(self, token: str, caller: Client) -> None:
        """RFC 7009 §2.1: revoking a refresh token revokes its grant (here, the whole family)."""
        found = await self._refresh.get(keyed_hash(self._pepper, token))
        if found is None or found[1].client_id != caller.client_id:
            return
        now = self._clock.now()
        await self._refresh.revoke_family(found[1].family_id, now, "revoked")
        await self._tokens.revoke_by_family(found[1].family_id, now)

    async def _find(self, token: str) -> _Known | None:
        known = await self._lookup(token)
        if known is None or not known.active:
            return known
        # The client lookup is cached for at most a second (docs/performance.md), which bounds
        # how long a token outlives its client's deletion made in another process.
        if await self._clients.get(known.record.client_id) is None:
            return _Known(known.record, False)
        return known

    async def _lookup(self, token: str) -> _Known | None:
        now = self._clock.now()
        # An opaque token, or a JWT encrypted to its resource (which we cannot open): by hash.
        if token.startswith(ACCESS_TOKEN_PREFIX) or is_jwe(token):
            record = await self._tokens.get_by_hash(keyed_hash(self._pepper, token))
            if record is None:
                return None
            return _Known(record, record.revoked_at is None and record.expires_at > now)
        record = self._read_jwt(token, now)
        if record is None:
            return None
        stored = await self._tokens.get_by_jti(record.jti)
        revoked = stored is not None and stored.revoked_at is not None
        return _Known(stored or record, not revoked and record.expires_at > now)

    def _read_jwt(self, token: str, now: int) -> IssuedToken | None:
        try:
            header, claims = verify_jwt(token, self._keys())
        except InvalidSignature:
            return None
        if header.get("typ") != ACCESS_TOKEN_TYP or claims.get("iss") != self._issuer:
            return None
        aud, iat = claims.get("aud"), claims.get("iat")
        # Our own tokens always have these shapes; anything else is no token of ours.
        if isinstance(aud, str):
            aud = [aud]
        if not isinstance(aud, list) or not aud or not all(isinstance(a, str) for a in aud):
            return None
        if not isinstance(iat, int) or isinstance(iat, bool):
            return None
        try:
            exp = int(claims["exp"])
            audience = " ".join(aud)
            record = IssuedToken(
                jti=str(claims["jti"]),
                client_id=str(claims["client_id"]),
                subject=str(claims["sub"]),
                scope=str(claims.get("scope", "")),
                audience=audience,
                format="jwt",
                issued_at=iat,
                expires_at=exp,
                claims={k: v for k, v in claims.items() if k not in RESERVED_CLAIMS} or None,
            )
        except (KeyError, TypeError, ValueError):
            return None
        if iat > now + self._leeway:
            return None
        return record


def _with_claims(body: dict[str, Any], claims: Mapping[str, Any] | None) -> dict[str, Any]:
    """The token's other claims (``cnf``, ``act``), JWT or opaque alike; a DPoP-bound token is
    of type DPoP (RFC 9449 §6.2)."""
    if not claims:
        return body
    for name, value in claims.items():
        body.setdefault(name, value)
    cnf = claims.get("cnf")
    if isinstance(cnf, Mapping) and "jkt" in cnf:
        body["token_type"] = "DPoP"
    return body


class InspectionEndpoints:
    """The handlers of /introspect (RFC 7662) and /revoke (RFC 7009) for the client pipeline."""

    def __init__(self, inspector: TokenInspector) -> None:
        self._inspector = inspector

    async def introspect(self, request: ProtocolRequest, client: Client | None) -> Answer:
        assert client is not None  # a confidential client, authenticated by the pipeline
        value = _token_param(request)
        body = await self._inspector.introspect(value, client)
        active = bool(body.get("active"))
        return Answer(
            body=body,
            event="token.introspected",
            fingerprint=fingerprint(value),
            detail={"active": active},
        )

    async def revoke(self, request: ProtocolRequest, client: Client | None) -> Answer:
        assert client is not None
        value = _token_param(request)
        await self._inspector.revoke(value, client)
        return Answer(event="token.revocation_requested", fingerprint=fingerprint(value))


def _token_param(request: ProtocolRequest) -> str:
    value = request.params.get("token")
    if value is None:
        raise InvalidRequest("token is required")
    return value
