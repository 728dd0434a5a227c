"""Transaction tokens (draft-ietf-oauth-transaction-tokens) as a service inside a trust domain
checks them: the JWT path of ``jwt.py`` with the Txn-Token's own rules.

- The header's ``typ`` is ``txntoken+jwt``: an access token (``at+jwt``) is refused here, and a
  Txn-Token is refused by every access-token guard (RFC 8725 §3.11, explicit typing).
- ``aud`` names the trust domain; ``iss`` is the one issuer whose keys this guard holds (the
  gateway's, or the authorization server's when the gateway obtains its tokens by exchange).
- A Txn-Token is short-lived: one whose ``exp - iat`` exceeds ``max_lifetime`` is refused even
  while it has not expired, so a leaked long-lived one is worth nothing here.
- ``txn`` and ``sub_id`` are required; ``azd``, ``rctx``, ``purp`` and ``scope`` must have their
  shapes when present. The principal exposes them (``Principal.txn`` and so on).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tokensmith.core.clock import Clock
from tokensmith.core.txn_tokens import TXN_TOKEN_JWT_TYP
from tokensmith.guard.errors import InvalidToken
from tokensmith.guard.jwt import JwtValidator, KeySource
from tokensmith.guard.principal import Principal, new_principal

__all__ = ["DEFAULT_MAX_LIFETIME", "TXN_REQUIRED_CLAIMS", "TxnTokenValidator"]

TXN_REQUIRED_CLAIMS = ("iss", "aud", "iat", "exp", "txn", "sub_id")
DEFAULT_MAX_LIFETIME = 300  # seconds; the gateway's tokens live 60 by default
_MAX_TXN_CHARS = 256


class TxnTokenValidator(JwtValidator):
    token_types = frozenset({TXN_TOKEN_JWT_TYP, "application/" + TXN_TOKEN_JWT_TYP})
    typ_refusal = f"the token is not a transaction token (typ must be {TXN_TOKEN_JWT_TYP})"

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        trust_domain: str | Iterable[str],
        max_lifetime: int = DEFAULT_MAX_LIFETIME,
        leeway: int = 5,
        cache_entries: int = 10_000,
        clock: Clock | None = None,
    ) -> None:
        domains = (trust_domain,) if isinstance(trust_domain, str) else tuple(trust_domain)
        if max_lifetime < 1:
            raise ValueError("max_lifetime must be at least one second")
        super().__init__(
            keys,
            issuer=issuer,
            audiences=domains,
            leeway=leeway,
            required_claims=TXN_REQUIRED_CLAIMS,
            cache_entries=cache_entries,
            cache_seconds=max_lifetime,
            clock=clock,
        )
        self.max_lifetime = max_lifetime

    def _principal(
        self, claims: dict[str, Any], audience: tuple[str, ...], issuer: str, exp: int
    ) -> Principal:
        iat = claims.get("iat")
        if type(iat) is not int:  # required; a float NumericDate would be of no other issuer
            raise InvalidToken("the transaction token's 'iat' claim is not a whole number")
        if exp - iat > self.max_lifetime:
            raise InvalidToken(
                f"the transaction token lives longer than {self.max_lifetime} seconds"
            )
        txn = claims.get("txn")
        if type(txn) is not str or not txn or len(txn) > _MAX_TXN_CHARS:
            raise InvalidToken("the transaction token's 'txn' claim is malformed")
        subject = _subject(claims)
        azd = _optional_object(claims, "azd")
        _optional_object(claims, "rctx")
        scope, purp = claims.get("scope", ""), claims.get("purp", "")
        if type(scope) is not str or type(purp) is not str:
            raise InvalidToken("the transaction token's scope or purp claim is malformed")
        client_id = azd.get("client_id")
        return new_principal(
            subject,
            client_id if type(client_id) is str else None,
            frozenset(scope.split()),
            audience,
            issuer,
            exp,
            txn,
            "txn_token",
            claims,
        )


def _subject(claims: dict[str, Any]) -> str:
    """``sub`` when present, else the identifier of ``sub_id`` (RFC 9493 §3)."""
    sub_id = claims.get("sub_id")
    if not isinstance(sub_id, dict) or type(sub_id.get("format")) is not str:
        raise InvalidToken("the transaction token's 'sub_id' is no subject identifier")
    sub = claims.get("sub", sub_id.get("id"))
    if type(sub) is not str or not sub:
        raise InvalidToken("the transaction token names no subject")
    return sub


def _optional_object(claims: dict[str, Any], name: str) -> dict[str, Any]:
    value = claims.get(name, {})
    if not isinstance(value, dict):
        raise InvalidToken(f"the transaction token's {name!r} claim must be a JSON object")
    return value
