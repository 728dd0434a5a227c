"""The transaction tokens (draft-ietf-oauth-transaction-tokens) the gateway hands to upstreams
instead of the outside credential, in mint mode: signed by the gateway's own key.

One token per request: ``txn`` is the request's transaction id, new for each request unless the
route trusts the caller's ``Txn-Id``. ``aud`` is the route's trust domain, ``sub_id`` the subject,
``azd`` the outside client and its scope, ``rctx`` the caller's address (after the trusted-proxy
rule), how it authenticated and which workload asked (``req_wl``), ``purp`` what the route is
for. ``sub`` and ``scope`` stay too (the later drafts make them the subject and the purpose), so
an upstream's scope checks keep working. The header's ``typ`` is ``txntoken+jwt``. The token
lives ``internal_token_ttl`` seconds and never past the outside credential's ``exp``.

``TxnTokenSource`` is what the proxy asks; exchange mode (``txn_exchange.py``) is the other one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tokensmith.core.clock import Clock, SystemClock
from tokensmith.core.txn_tokens import TXN_TOKEN_JWT_TYP, txn_claims
from tokensmith.errors import ConfigError
from tokensmith.guard.errors import TokenExpired
from tokensmith.guard.principal import Principal
from tokensmith.jose.jws import sign_jwt
from tokensmith.jose.keys import SigningKey, generate_signing_key, load_private_key

__all__ = [
    "MintedTxnTokens",
    "TxnRequest",
    "TxnTokenSource",
    "authn_method",
    "client_of",
    "load_or_create_key",
]

# rctx.authn: how the caller proved who it is at the gateway.
_AUTHN = {"jwt": "oauth_access_token", "opaque": "oauth_access_token", "api_key": "api_key"}


@dataclass(frozen=True, slots=True)
class TxnRequest:
    """One forwarded request, as its transaction token describes it."""

    principal: Principal
    credential: str  # the outside credential: exchange mode's subject token, never logged
    credential_kind: str  # "bearer" or "api_key"
    trust_domain: str
    purpose: str
    txn: str
    source_ip: str
    txn_from_caller: bool = False  # the route trusted the caller's Txn-Id


class TxnTokenSource(Protocol):
    def jwks(self) -> dict[str, Any]: ...

    async def issue(self, request: TxnRequest) -> str: ...

    async def aclose(self) -> None: ...


def authn_method(principal: Principal) -> str:
    return _AUTHN.get(principal.kind, principal.kind)


def client_of(principal: Principal) -> str:
    """The outside client: an API key has none, so the key stands in for it."""
    return principal.client_id or f"api-key:{principal.token_id}"


class MintedTxnTokens:
    def __init__(
        self,
        key: SigningKey,
        *,
        issuer: str,
        ttl: int,
        workload: str,
        clock: Clock | None = None,
    ) -> None:
        self.key = key
        self.issuer = issuer
        self.ttl = ttl
        self.workload = workload
        self._clock = clock or SystemClock()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public_jwk()]}

    async def issue(self, request: TxnRequest) -> str:
        return self.mint(request)

    def mint(self, request: TxnRequest) -> str:
        principal = request.principal
        now = self._clock.now()
        ttl = self.ttl
        if principal.expires_at is not None:
            ttl = min(ttl, principal.expires_at - now)  # never outlive the outside credential
        if ttl < 1:
            raise TokenExpired("the access token expired")
        claims = txn_claims(
            issuer=self.issuer,
            audience=request.trust_domain,
            subject_id=principal.subject,
            txn=request.txn,
            purpose=request.purpose,
            authorization_details={"client_id": client_of(principal), "scope": principal.scope},
            request_context={
                "req_ip": request.source_ip,
                "authn": authn_method(principal),
                "req_wl": self.workload,
            },
            now=now,
            ttl=ttl,
            scope=principal.scope,
        )
        return sign_jwt(self.key, claims, typ=TXN_TOKEN_JWT_TYP)

    async def aclose(self) -> None:
        return None


def load_or_create_key(path: Path, alg: str = "ES256") -> SigningKey:
    """The gateway's signing key from a PEM file; on first start, a new one (mode 0600)."""
    if path.exists():
        try:
            pem = path.read_bytes()
            probe = load_private_key("probe", alg, pem)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"gateway.signing_key_file {path}: unusable ({exc})") from None
        return load_private_key(probe.key.thumbprint(), alg, pem)  # kid as generate gives it
    key = generate_signing_key(alg)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_pem())
    except OSError as exc:
        raise ConfigError(f"gateway.signing_key_file {path}: cannot be written ({exc})") from None
    return key
