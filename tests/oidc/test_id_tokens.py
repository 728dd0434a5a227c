"""oidc/id_tokens.py: ID tokens (OIDC Core §2) as joserfc and PyJWT read them, for every
algorithm the key ring can be configured with."""

from __future__ import annotations

import pytest

from tests.support import verify_both
from tokensmith.core.clock import FrozenClock
from tokensmith.jose.algorithms import ALGORITHMS
from tokensmith.jose.keys import generate_signing_key
from tokensmith.oidc.id_tokens import IdTokenIssuer, token_hash


@pytest.mark.parametrize("alg", sorted(ALGORITHMS))
def test_an_id_token_both_libraries_verify(alg: str) -> None:
    key, clock = generate_signing_key(alg), FrozenClock(1_790_000_000)
    issuer = IdTokenIssuer(
        issuer="https://issuer.example.com", signing_key=lambda: key, clock=clock, lifetime=600
    )
    token = issuer.issue(
        client_id="c1",
        subject="user-1",
        auth_time=1_789_999_990,
        nonce="n-0S6_WzA2Mj",
        access_token="eyJ.access.token",
        amr=("pwd", "otp"),
        extra={"name": "Zoë Ångström", "email_verified": True},
    )
    header, claims = verify_both(token, key)
    assert header == {"typ": "JWT", "alg": alg, "kid": key.kid}
    assert claims == {
        "iss": "https://issuer.example.com",
        "sub": "user-1",
        "aud": "c1",
        "azp": "c1",
        "exp": 1_790_000_600,
        "iat": 1_790_000_000,
        "at_hash": token_hash("eyJ.access.token", alg),
        "amr": ["pwd", "otp"],
        "auth_time": 1_789_999_990,
        "nonce": "n-0S6_WzA2Mj",
        "name": "Zoë Ångström",
        "email_verified": True,
    }


@pytest.mark.parametrize("alg", sorted(ALGORITHMS))
def test_an_id_token_without_auth_time_or_nonce_leaves_them_out(alg: str) -> None:
    key = generate_signing_key(alg)
    issuer = IdTokenIssuer(
        issuer="https://issuer.example.com",
        signing_key=lambda: key,
        clock=FrozenClock(1_790_000_000),
        lifetime=600,
    )
    token = issuer.issue(
        client_id="c1", subject="u", auth_time=None, nonce=None, access_token="tsat_x"
    )
    _, claims = verify_both(token, key)
    assert "auth_time" not in claims and "nonce" not in claims and claims["amr"] == ["pwd"]
