"""gateway/tokens.py: the internal JWTs the gateway signs, as joserfc and PyJWT read them, for
every algorithm its key may have."""

from __future__ import annotations

import pytest

from tests.support import verify_both
from tokensmith.core.clock import FrozenClock
from tokensmith.gateway.tokens import InternalTokens
from tokensmith.guard.principal import Principal
from tokensmith.jose.algorithms import ALGORITHMS
from tokensmith.jose.keys import generate_signing_key


@pytest.mark.parametrize("alg", sorted(ALGORITHMS))
def test_an_internal_token_both_libraries_verify(alg: str) -> None:
    key = generate_signing_key(alg)
    tokens = InternalTokens(
        key, issuer="https://gateway.internal", ttl=60, clock=FrozenClock(1_790_000_000)
    )
    principal = Principal(
        subject="user-1",
        client_id="c1",
        scopes=frozenset({"orders:read"}),
        audience=("https://gateway.example",),
        issuer="https://issuer.example.com",
        expires_at=1_790_000_030,
        token_id="t1",
        kind="jwt",
    )
    header, claims = verify_both(tokens.mint(principal, "https://orders.internal"), key)
    assert header == {"typ": "at+jwt", "alg": alg, "kid": key.kid}
    assert {k: v for k, v in claims.items() if k != "jti"} == {
        "iss": "https://gateway.internal",
        "sub": "user-1",
        "aud": "https://orders.internal",
        "iat": 1_790_000_000,
        "exp": 1_790_000_030,  # never outlives the outside credential
        "client_id": "c1",
        "scope": "orders:read",
    }
