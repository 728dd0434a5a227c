"""Encrypted ID tokens and userinfo for a client that registered them (OIDC Registration §2,
Core §10.2): signed by us, then encrypted to the client's key. The test opens them with joserfc
and checks the signature with PyJWT, as a relying party would; registration refuses what it
must (SECURITY.md case 121)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import jwt as pyjwt
import pytest
import sqlalchemy as sa
from joserfc import jwe
from joserfc.jwk import ECKey, RSAKey

from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_authorization import CALLBACK, refresh
from tests.oauth.test_client_credentials import verify_with_published_jwks
from tests.oauth.test_oidc import sign_in
from tests.support import OFFERED, ServerThread
from tokensmith.oauth.client_assertion import client_keys, parse_client_jwks
from tokensmith.oauth.clients import ClientEncryption, NewClient
from tokensmith.persistence.tables import clients as clients_table
from tokensmith.runtime.services import open_engine
from tokensmith.settings import Settings

pytestmark = pytest.mark.usefixtures("alice")

RSA = RSAKey.generate_key(2048, parameters={"kid": "rp-rsa", "use": "enc"})
EC = ECKey.generate_key("P-384", parameters={"kid": "rp-ec", "use": "enc"})
SIGNING = ECKey.generate_key("P-256", parameters={"kid": "rp-sig", "use": "sig", "alg": "ES256"})
JWKS = {"keys": [RSA.as_dict(private=False), EC.as_dict(private=False)]}
ALLOWED = ["RSA-OAEP-256", "ECDH-ES", "ECDH-ES+A256KW", "A256GCM"]


def rp_request(**changes: Any) -> NewClient:
    base: dict[str, Any] = {
        "grant_types": ("authorization_code", "refresh_token"),
        "redirect_uris": (CALLBACK,),
        "scope": "openid profile email",
        "jwks": JWKS,
        "auth_method": "client_secret_basic",
        "encryption": ClientEncryption(("RSA-OAEP-256", None), ("ECDH-ES+A256KW", "A256GCM")),
    }
    return NewClient("Encrypting RP", **{**base, **changes})


@pytest.fixture
def rp(register: Registrar) -> Registered:
    return register(rp_request())


def open_nested(token: str, key: Any, alg: str) -> tuple[dict[str, Any], str]:
    assert token.count(".") == 4
    opened = jwe.decrypt_compact(token, key, algorithms=ALLOWED)
    assert opened.protected["alg"] == alg
    assert opened.protected["enc"] == "A256GCM"
    assert opened.protected["cty"] == "JWT"
    assert opened.plaintext is not None
    return dict(opened.protected), opened.plaintext.decode()


def test_id_tokens_are_signed_then_encrypted(
    server: ServerThread, http: httpx.Client, rp: Registered, alice: str
) -> None:
    _, tokens = sign_in(server, http, rp, "openid profile")
    header, inner = open_nested(tokens["id_token"], RSA, "RSA-OAEP-256")
    assert header["kid"] == "rp-rsa"
    claims = verify_with_published_jwks(http, inner, rp.client_id)
    assert claims["sub"] == alice and claims["iss"] == server.base_url
    # The access token is not encrypted: its audience is no resource configured for it.
    assert tokens["access_token"].count(".") == 2
    again = refresh(http, rp, tokens["refresh_token"])
    assert again.status_code == 200, again.text
    _, inner = open_nested(again.json()["id_token"], RSA, "RSA-OAEP-256")
    assert verify_with_published_jwks(http, inner, rp.client_id)["sub"] == alice


def test_userinfo_is_a_signed_then_encrypted_jwt(
    server: ServerThread, http: httpx.Client, rp: Registered, alice: str
) -> None:
    _, tokens = sign_in(server, http, rp, "openid profile email")
    info = http.get("/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200
    assert info.headers["content-type"] == "application/jwt"
    _, inner = open_nested(info.text, EC, "ECDH-ES+A256KW")
    jwks = pyjwt.PyJWKSet.from_dict(http.get("/jwks").json())
    kid = pyjwt.get_unverified_header(inner)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = pyjwt.decode(inner, key.key, algorithms=[key.algorithm_name], audience=rp.client_id)
    assert claims["iss"] == server.base_url
    assert claims["sub"] == alice
    assert claims["preferred_username"] == "alice"
    assert claims["email"] == "alice@example.com"


@pytest.mark.backends("sqlite")
def test_a_key_removed_after_registration_withholds_userinfo_without_a_500(
    server: ServerThread, http: httpx.Client, rp: Registered, settings: Settings
) -> None:
    _, tokens = sign_in(server, http, rp, "openid profile")

    async def drop_keys() -> None:
        engine = await open_engine(settings)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.update(clients_table)
                    .where(clients_table.c.client_id == rp.client_id)
                    .values(jwks={"keys": []})
                )
        finally:
            await engine.dispose()

    asyncio.run(drop_keys())
    time.sleep(1.1)  # the client cache keeps a record for a second
    info = http.get("/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 400, info.text
    assert info.json()["error"] == "invalid_request"
    assert "alice" not in info.text  # the claims are never sent readable instead


def test_clients_without_encryption_are_unchanged(
    server: ServerThread, http: httpx.Client, register: Registrar, alice: str
) -> None:
    plain = register(rp_request(encryption=ClientEncryption()))
    _, tokens = sign_in(server, http, plain, "openid")
    assert tokens["id_token"].count(".") == 2
    info = http.get("/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert info.headers["content-type"] == "application/json"
    assert info.json() == {"sub": alice}


def test_discovery_lists_the_encryption_algorithms(http: httpx.Client) -> None:
    metadata = http.get("/.well-known/openid-configuration").json()
    for what in ("id_token", "userinfo"):
        assert metadata[f"{what}_encryption_alg_values_supported"] == ALLOWED[:3]
        assert metadata[f"{what}_encryption_enc_values_supported"] == ["A256GCM"]


def _register(**changes: Any) -> Any:
    return rp_request(**changes).validated("c", b"h" * 32, 0, offered=OFFERED)


def test_registration_defaults_enc_and_keeps_a_secret() -> None:
    client = _register()
    assert client.id_token_encrypted_response_alg == "RSA-OAEP-256"
    assert client.id_token_encrypted_response_enc == "A256GCM"  # defaulted
    assert client.userinfo_encrypted_response_alg == "ECDH-ES+A256KW"
    # A JWKS of encryption keys is no credential: the client keeps its secret...
    assert client.auth_method == "client_secret_basic" and client.secret_hash is not None
    unset = rp_request(auth_method=None, encryption=ClientEncryption())
    assert unset.validated("c", b"h" * 32, 0, offered=OFFERED).auth_method == "client_secret_basic"
    # ...and its encryption keys never verify a client assertion.
    mixed = {"keys": [*JWKS["keys"], SIGNING.as_dict(private=False)]}
    assert set(client_keys(mixed)) == {"rp-sig"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"jwks": None}, "no RSA-OAEP-256 encryption key"),
        ({"encryption": ClientEncryption(("RSA1_5", None))}, "not supported"),
        ({"encryption": ClientEncryption(("RSA-OAEP", None))}, "not supported"),
        ({"encryption": ClientEncryption(("dir", None))}, "not supported"),
        ({"encryption": ClientEncryption(("A256KW", None))}, "not supported"),
        ({"encryption": ClientEncryption(("PBES2-HS512+A256KW", None))}, "not supported"),
        ({"encryption": ClientEncryption((None, "A256GCM"))}, "needs its alg"),
        ({"encryption": ClientEncryption(("ECDH-ES", "A128CBC-HS256"))}, "only A256GCM"),
        ({"encryption": ClientEncryption((None, None), ("ECDH-ES", "A128GCM"))}, "only A256GCM"),
        (
            {
                "jwks": {"keys": [SIGNING.as_dict(private=False)]},
                "auth_method": "private_key_jwt",
                "encryption": ClientEncryption(("ECDH-ES", None)),
            },
            "no ECDH-ES encryption key",
        ),
    ],
)
def test_registration_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _register(**changes)


def test_registered_jwks_refuse_weak_encryption_keys() -> None:
    small = RSAKey.generate_key(2048).as_dict(private=False)
    weak = {**small, "n": small["n"][:170], "use": "enc"}  # about 1024 bits
    for key in (
        weak,
        {**RSA.as_dict(private=False), "alg": "RSA1_5"},
        {**EC.as_dict(private=False), "alg": "dir"},
        {**ECKey.generate_key("secp256k1").as_dict(private=False), "use": "enc"},
    ):
        with pytest.raises(ValueError):
            parse_client_jwks(json.dumps({"keys": [key]}))


def test_the_client_kit_opens_the_encrypted_id_token(
    server: ServerThread, http: httpx.Client, rp: Registered, alice: str
) -> None:
    from tokensmith.client.id_tokens import fetch_keys, validate_id_token
    from tokensmith.jose.jwe import decryption_key

    _, tokens = sign_in(server, http, rp, "openid")
    claims = validate_id_token(
        tokens["id_token"],
        fetch_keys(http, server.base_url + "/jwks"),
        issuer=server.base_url,
        client_id=rp.client_id,
        algorithms=["ES256"],
        nonce=None,
        now=int(time.time()),
        decryption_keys=[decryption_key(RSA.as_dict(private=True))],
    )
    assert claims["sub"] == alice
