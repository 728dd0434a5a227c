"""ID tokens as a relying party checks them (OIDC Core §3.1.3.7), on the guard's JWS path.

Signature against the issuer's JWKS with the algorithm pinned to the key (RFC 8725 §3.1), no
header-borne keys, then ``iss`` (exact), ``aud`` (our client id; with several, ``azp`` must be us),
``exp``, ``iat`` and ``nonce`` (constant-time). The access-token validator (``jwt.py``) refuses
ID tokens by ``typ``; this one refuses access tokens the same way.
"""

from __future__ import annotations

from typing import Any

from tokensmith.core.clock import Clock, SystemClock
from tokensmith.core.secrets import constant_time_equals
from tokensmith.guard.errors import InvalidToken, UnknownKeyId
from tokensmith.guard.jwks import JwksCache
from tokensmith.guard.jwt import MAX_TOKEN_CHARS
from tokensmith.guard.pinned import PinnedKey
from tokensmith.guard.segments import json_object, segment_bytes, segment_object, split_jws

__all__ = ["IdTokenValidator"]

_REFUSED_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"})
_ID_TYP = frozenset({"jwt", "application/jwt"})


class IdTokenValidator:
    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        client_id: str,
        leeway: int = 30,
        clock: Clock | None = None,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.leeway = leeway
        self._jwks = jwks
        self._clock = clock or SystemClock()

    async def validate(self, token: str, nonce: str) -> dict[str, Any]:
        """The claims of a valid ID token issued to us for this ``nonce``; InvalidToken else."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("the ID token is too large")
        segments = split_jws(token)
        if segments is None:
            raise InvalidToken("the ID token is not a signed JWT")
        head, body, sig = segments
        header = segment_object(head, "header")
        key = await self._key_for(header)
        signature, payload = segment_bytes(sig, "signature"), segment_bytes(body, "claims")
        if not key.verify(f"{head}.{body}".encode("ascii"), signature):
            raise InvalidToken("the ID token's signature is invalid")
        claims = json_object(payload, "claims")
        self._check_claims(claims, nonce)
        return claims

    async def _key_for(self, header: dict[str, Any]) -> PinnedKey:
        refused = _REFUSED_HEADERS.intersection(header)
        if refused:
            raise InvalidToken(f"the ID token header carries {sorted(refused)[0]!r}")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in _ID_TYP):
            raise InvalidToken("the token is not an ID token (typ)")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("the ID token header has no kid")
        await self._jwks.ensure_loaded()
        key = self._jwks.keys.get(kid)
        if key is None and self._jwks.may_refetch_for_unknown_kid():
            await self._jwks.refresh()  # the issuer may have rotated since we last looked
            key = self._jwks.keys.get(kid)
        if key is None:
            raise UnknownKeyId("the ID token was signed by an unknown key")
        if header.get("alg") != key.alg:
            raise InvalidToken("the ID token's algorithm does not match its key")
        return key

    def _check_claims(self, claims: dict[str, Any], nonce: str) -> None:
        if claims.get("iss") != self.issuer:
            raise InvalidToken("the ID token is from another issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or self.client_id not in audiences:
            raise InvalidToken("the ID token is not for this client")
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise InvalidToken("the ID token's azp is not this client")
        now = self._clock.now()
        exp, iat = claims.get("exp"), claims.get("iat")
        if type(exp) is not int or exp + self.leeway <= now:
            raise InvalidToken("the ID token expired or has no valid exp")
        if type(iat) is not int or iat > now + self.leeway:
            raise InvalidToken("the ID token has no valid iat")
        sub, presented = claims.get("sub"), claims.get("nonce")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("the ID token has no sub")
        if not isinstance(presented, str) or not constant_time_equals(presented, nonce):
            raise InvalidToken("the ID token's nonce does not match the login")
