"""gateway/tokens.py: the transaction tokens the gateway signs in mint mode, as joserfc and PyJWT
read them, for every algorithm its key may have; and what the guard makes of them."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import jwt as pyjwt
import pytest

from tests.support import verify_both
from tokensmith.core.clock import FrozenClock
from tokensmith.gateway.tokens import MintedTxnTokens, TxnRequest
from tokensmith.guard import StaticKeys, TokenExpired, pin
from tokensmith.guard.principal import Principal
from tokensmith.guard.txn_tokens import TxnTokenValidator
from tokensmith.jose.algorithms import ALGORITHMS
from tokensmith.jose.keys import generate_signing_key, verification_key_from_jwk

NOW = 1_790_000_000
PRINCIPAL = Principal(
    subject="user-1",
    client_id="c1",
    scopes=frozenset({"orders:read", "orders:write"}),
    audience=("https://gateway.example",),
    issuer="https://issuer.example.com",
    expires_at=NOW + 30,
    token_id="t1",
    kind="jwt",
)
REQUEST = TxnRequest(
    principal=PRINCIPAL,
    credential="outside-token",
    credential_kind="bearer",
    trust_domain="https://orders.internal",
    purpose="orders:read",
    txn="0b7e4c9a-1d2f-4a8e-9c3b-5f6a7d8e9f01",
    source_ip="203.0.113.7",
)


def minted(alg: str = "ES256", ttl: int = 60) -> tuple[MintedTxnTokens, str]:
    key = generate_signing_key(alg)
    tokens = MintedTxnTokens(
        key, issuer="https://gateway.internal", ttl=ttl, workload="edge", clock=FrozenClock(NOW)
    )
    return tokens, tokens.mint(REQUEST)


@pytest.mark.parametrize("alg", sorted(ALGORITHMS))
def test_a_txn_token_both_libraries_verify(alg: str) -> None:
    tokens, token = minted(alg)
    header, claims = verify_both(token, tokens.key)
    assert header == {"typ": "txntoken+jwt", "alg": alg, "kid": tokens.key.kid}
    assert claims == {
        "iss": "https://gateway.internal",
        "aud": "https://orders.internal",  # the trust domain
        "iat": NOW,
        "exp": NOW + 30,  # never outlives the outside credential
        "txn": REQUEST.txn,
        "sub_id": {"format": "opaque", "id": "user-1"},
        "sub": "user-1",
        "azd": {"client_id": "c1", "scope": "orders:read orders:write"},
        "rctx": {"req_ip": "203.0.113.7", "authn": "oauth_access_token", "req_wl": "edge"},
        "purp": "orders:read",
        "scope": "orders:read orders:write",
    }


def test_pyjwt_reads_the_claims_with_the_trust_domain_as_audience() -> None:
    tokens, token = minted()
    public = pyjwt.PyJWK(tokens.key.public_jwk()).key
    claims = pyjwt.decode(
        token,
        public,
        algorithms=["ES256"],
        audience="https://orders.internal",
        issuer="https://gateway.internal",
        options={"verify_exp": False},
    )
    assert claims["txn"] == REQUEST.txn
    assert pyjwt.get_unverified_header(token)["typ"] == "txntoken+jwt"


def test_the_ttl_bounds_the_lifetime_when_the_credential_lives_longer() -> None:
    tokens = MintedTxnTokens(
        generate_signing_key("ES256"),
        issuer="https://gateway.internal",
        ttl=10,
        workload="edge",
        clock=FrozenClock(NOW),
    )
    claims = pyjwt.decode(tokens.mint(REQUEST), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 10


def test_an_api_key_stands_in_for_the_client() -> None:
    key = replace(PRINCIPAL, client_id=None, kind="api_key", token_id="k1", expires_at=None)
    tokens, _ = minted()
    claims = pyjwt.decode(
        tokens.mint(replace(REQUEST, principal=key, credential_kind="api_key")),
        options={"verify_signature": False},
    )
    assert claims["azd"]["client_id"] == "api-key:k1"
    assert claims["rctx"]["authn"] == "api_key"
    assert claims["exp"] - claims["iat"] == 60


def test_a_credential_about_to_expire_gets_no_token() -> None:
    tokens, _ = minted()
    with pytest.raises(TokenExpired):
        tokens.mint(replace(REQUEST, principal=replace(PRINCIPAL, expires_at=NOW)))


def test_the_guard_exposes_the_txn_claims() -> None:
    tokens, token = minted()
    keys = StaticKeys([pin(verification_key_from_jwk(tokens.key.public_jwk()))])
    validator = TxnTokenValidator(
        keys,
        issuer="https://gateway.internal",
        trust_domain="https://orders.internal",
        clock=FrozenClock(NOW + 1),
    )
    principal = validator.validate(token)
    assert principal.kind == "txn_token"
    assert principal.subject == "user-1" and principal.client_id == "c1"
    assert principal.txn == REQUEST.txn
    assert principal.sub_id == {"format": "opaque", "id": "user-1"}
    assert principal.purp == "orders:read"
    assert principal.azd == {"client_id": "c1", "scope": "orders:read orders:write"}
    assert principal.rctx is not None and principal.rctx["req_wl"] == "edge"
    assert principal.scopes == {"orders:read", "orders:write"}
    assert asyncio.run(tokens.issue(REQUEST)).count(".") == 2
