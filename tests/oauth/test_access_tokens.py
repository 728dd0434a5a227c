"""oauth/access_tokens.py: RFC 9068 access tokens as joserfc and PyJWT read them, for every
algorithm the key ring can be configured with."""

from __future__ import annotations

import pytest

from tests.support import verify_both
from tokensmith.core.clock import FrozenClock
from tokensmith.jose.algorithms import ALGORITHMS
from tokensmith.jose.keys import generate_signing_key
from tokensmith.oauth.access_tokens import ACCESS_TOKEN_TYP, AccessTokenIssuer, TokenContext
from tokensmith.oauth.clients import Client

ISSUER = "https://issuer.example.com"
CLIENT = Client("c1", "Client", False, ("client_credentials",), (), "orders:read", "basic")


@pytest.mark.parametrize("alg", sorted(ALGORITHMS))
@pytest.mark.parametrize(
    "audience", [("https://api.example",), ("https://a.test", "https://b.test")]
)
def test_an_access_token_is_an_rfc_9068_jwt_both_libraries_verify(
    alg: str, audience: tuple[str, ...]
) -> None:
    key, clock = generate_signing_key(alg), FrozenClock(1_790_000_000)
    issuer = AccessTokenIssuer(
        issuer=ISSUER, signing_key=lambda: key, pepper=b"p" * 32, clock=clock
    )
    ctx = TokenContext(
        client=CLIENT,
        subject="user-1",
        scope=frozenset({"orders:read", "orders:write"}),
        audience=audience,
        lifetime=300,
        claims={"cnf": {"jkt": "thumbprint"}, "act": {"sub": "Zoë"}},
    )
    token = issuer.issue(ctx)
    header, claims = verify_both(token.value, key)
    assert header == {"typ": ACCESS_TOKEN_TYP, "alg": alg, "kid": key.kid}
    assert claims == {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": audience[0] if len(audience) == 1 else list(audience),
        "exp": 1_790_000_300,
        "iat": 1_790_000_000,
        "jti": token.jti,
        "client_id": "c1",
        "scope": "orders:read orders:write",
        "cnf": {"jkt": "thumbprint"},
        "act": {"sub": "Zoë"},
    }
