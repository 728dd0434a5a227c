"""client/id_tokens.py's IdTokenValidator, as the BFF uses it on a JWKS cache: OIDC Core §3.1.3.7
and SECURITY.md's token cases that apply to ID tokens (alg, typ, header keys, kid, iss, aud, exp,
iat) plus the nonce, with keys fetched over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.guard.conftest import Keys, issuer, keys
from tests.guard.forge import DROP, ISSUER, hs256, public_forms, seg, sign
from tests.guard.servers import StubServer
from tests.support import refused_port
from tokensmith.client.errors import IdTokenError
from tokensmith.client.id_tokens import IdTokenValidator
from tokensmith.guard.jwks import JwksCache

__all__ = ["issuer", "keys"]
pytestmark = pytest.mark.anyio
CLIENT = "bff-client"
NONCE = "n-0S6_WzA2Mj"


def id_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": "alice", "aud": CLIENT, "exp": now + 300, "iat": now}
    body = {**body, "nonce": NONCE, **overrides}
    return {k: v for k, v in body.items() if v is not DROP}


def validator(stub: StubServer) -> IdTokenValidator:
    jwks = JwksCache(stub.base_url + "/jwks", unknown_kid_cooldown=3600)
    return IdTokenValidator(jwks, issuer=ISSUER, client_id=CLIENT)


async def test_a_good_id_token(issuer: StubServer, keys: Keys) -> None:
    for key in (keys.es, keys.rs, keys.ed):
        token = sign(key, id_claims(), typ="JWT")
        assert (await validator(issuer).validate(token, NONCE))["sub"] == "alice"
    no_typ = sign(keys.es, id_claims(aud=[CLIENT, "other"], azp=CLIENT), typ=DROP)
    assert (await validator(issuer).validate(no_typ, NONCE))["sub"] == "alice"


@pytest.mark.parametrize(
    ("claims", "header"),
    [
        ({"nonce": "another"}, {}),
        ({"nonce": DROP}, {}),
        ({"nonce": 1}, {}),
        ({"iss": ISSUER + ".evil"}, {}),
        ({"iss": ISSUER[:-1]}, {}),
        ({"aud": "another-client"}, {}),
        ({"aud": [CLIENT, "other"]}, {}),  # several audiences and no azp
        ({"aud": [CLIENT, "other"], "azp": "other"}, {}),
        ({"exp": int(time.time()) - 120}, {}),
        ({"exp": DROP}, {}),
        ({"exp": "tomorrow"}, {}),
        ({"iat": int(time.time()) + 3600}, {}),
        ({"iat": DROP}, {}),
        ({"sub": ""}, {}),
        ({}, {"typ": "at+jwt"}),  # an access token is no ID token
        ({}, {"jku": "https://evil.example/jwks"}),
        ({}, {"jwk": {"kty": "oct", "k": "AAAA"}}),
        ({}, {"crit": ["exp"]}),
        ({}, {"alg": "RS256"}),  # not the key's algorithm
        ({}, {"alg": "none"}),
        ({}, {"kid": DROP}),
        ({}, {"kid": "../../dev/null"}),
    ],
)
async def test_a_bad_id_token_is_refused(
    issuer: StubServer, keys: Keys, claims: dict[str, Any], header: dict[str, Any]
) -> None:
    token = sign(keys.es, id_claims(**claims), **{"typ": "JWT", **header})
    with pytest.raises(IdTokenError):
        await validator(issuer).validate(token, NONCE)


async def test_forged_signatures_are_refused(issuer: StubServer, keys: Keys) -> None:
    check = validator(issuer)
    rogue = sign(keys.rogue, id_claims(), typ="JWT", kid=keys.es.kid)
    with pytest.raises(IdTokenError):
        await check.validate(rogue, NONCE)
    for secret in public_forms(keys.rs):  # RS256 re-signed as HS256 with the public key
        forged = hs256(secret, {"alg": "HS256", "kid": keys.rs.kid, "typ": "JWT"}, id_claims())
        with pytest.raises(IdTokenError):
            await check.validate(forged, NONCE)
    unsigned = f"{seg({'alg': 'none', 'kid': keys.es.kid})}.{seg(id_claims())}."
    with pytest.raises(IdTokenError):
        await check.validate(unsigned, NONCE)
    with pytest.raises(IdTokenError):
        await check.validate("a.b", NONCE)
    with pytest.raises(IdTokenError):
        await check.validate("x" * 9000, NONCE)


async def test_an_unknown_kid_refetches_the_jwks_once(issuer: StubServer, keys: Keys) -> None:
    check = validator(issuer)
    await check.validate(sign(keys.es, id_claims(), typ="JWT"), NONCE)
    before = issuer.hits.get("/jwks", 0)
    for _ in range(5):
        with pytest.raises(IdTokenError):
            await check.validate(sign(keys.rogue, id_claims(), typ="JWT"), NONCE)
    assert issuer.hits["/jwks"] == before + 1


async def test_the_metadata_algorithms_pin_the_id_token(issuer: StubServer, keys: Keys) -> None:
    """An algorithm the issuer's metadata does not list is refused even with a good signature."""
    jwks = JwksCache(issuer.base_url + "/jwks")
    pinned = IdTokenValidator(jwks, issuer=ISSUER, client_id=CLIENT, algorithms=["RS256"])
    assert (await pinned.validate(sign(keys.rs, id_claims(), typ="JWT"), NONCE))["sub"] == "alice"
    with pytest.raises(IdTokenError, match="algorithm"):
        await pinned.validate(sign(keys.es, id_claims(), typ="JWT"), NONCE)


async def test_an_unreachable_jwks_is_a_refusal(keys: Keys) -> None:
    down = JwksCache(f"http://127.0.0.1:{refused_port()}/jwks")
    check = IdTokenValidator(down, issuer=ISSUER, client_id=CLIENT)
    with pytest.raises(IdTokenError, match="keys cannot be read"):
        await check.validate(sign(keys.es, id_claims(), typ="JWT"), NONCE)
