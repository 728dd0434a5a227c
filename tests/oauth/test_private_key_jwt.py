"""private_key_jwt (RFC 7523): Authlib's signer works; SECURITY.md cases 33 and 43 are refused."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from tests.oauth.conftest import Registered, Registrar
from tests.support import ServerThread, cli_env, run_cli
from tokensmith.core.secrets import b64url
from tokensmith.oauth.client_assertion import ASSERTION_TYPE, parse_client_jwks
from tokensmith.oauth.clients import NewClient
from tokensmith.settings import Settings

# Above storage: SQLite only (the storage suites, and test_authorization, run on both databases).


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256")


def public_jwks(*keys: ECKey) -> dict[str, Any]:
    return {
        "keys": [
            {**k.as_dict(private=False), "kid": k.thumbprint(), "alg": "ES256", "use": "sig"}
            for k in keys
        ]
    }


@pytest.fixture
def signer(register: Registrar, key: ECKey) -> Registered:
    return register(
        NewClient(
            "signer", grant_types=("client_credentials",), scope="api:read", jwks=public_jwks(key)
        )
    )


def assertion(
    key: ECKey,
    client_id: str,
    settings: Settings,
    *,
    header: dict[str, Any] | None = None,
    alg: str = "ES256",
    **claims: Any,
) -> str:
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": settings.issuer,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(
        {"alg": alg, "kid": key.thumbprint(), **(header or {})}, body, key, algorithms=[alg]
    )


def token_with(http: httpx.Client, client_assertion: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
        **extra,
    }
    return http.post("/token", data=form)


def test_authlib_private_key_jwt(
    server: ServerThread, signer: Registered, key: ECKey, settings: Settings
) -> None:
    meta = requests.get(
        server.base_url + "/.well-known/oauth-authorization-server", timeout=10
    ).json()
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    for headers in (
        {"kid": key.thumbprint()},
        None,
    ):  # with a kid, and without (one key registered)
        session = OAuth2Session(
            signer.client_id,
            key,
            token_endpoint_auth_method=PrivateKeyJWT(settings.issuer, alg="ES256", headers=headers),
        )
        token = session.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        assert token["scope"] == "api:read"


def test_a_replayed_assertion_is_refused(
    http: httpx.Client, signer: Registered, key: ECKey, settings: Settings
) -> None:
    once = assertion(key, signer.client_id, settings)
    assert token_with(http, once).status_code == 200
    replay = token_with(http, once)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "https://evil.example.com"},
        {"aud": "TOKEN_ENDPOINT"},
        {"aud": ["ISSUER", "https://other.example.com"]},
        {"exp": 1},
        {"exp": None},
        {"exp": "tomorrow"},
        {"sub": None},
        {"sub": "someone-else"},
        {"iss": "someone-else"},
        {"iat": int(time.time()) + 3600},
        {"nbf": int(time.time()) + 3600},
        {"jti": None},
        {"exp": int(time.time()) + 86400},
    ],
)
def test_bad_assertion_claims(
    http: httpx.Client, signer: Registered, key: ECKey, settings: Settings, claims: dict[str, Any]
) -> None:
    swap = {"ISSUER": settings.issuer, "TOKEN_ENDPOINT": settings.issuer + "/token"}
    claims = {
        k: (
            [swap.get(x, x) for x in v]
            if isinstance(v, list)
            else swap.get(v, v)
            if isinstance(v, str)
            else v
        )
        for k, v in claims.items()
    }
    response = token_with(
        http, assertion(key, signer.client_id, settings, **claims), client_id=signer.client_id
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }


def test_wrong_keys_and_algorithms(
    http: httpx.Client, signer: Registered, key: ECKey, settings: Settings
) -> None:
    stranger = ECKey.generate_key("P-256")
    forged = assertion(stranger, signer.client_id, settings, header={"kid": key.thumbprint()})
    hmac_key = OctKey.import_key(json.dumps(public_jwks(key)["keys"][0]).encode())
    now = int(time.time())
    body = {
        "iss": signer.client_id,
        "sub": signer.client_id,
        "aud": settings.issuer,
        "exp": now + 60,
        "jti": "j" * 16,
    }
    symmetric = jwt.encode(
        {"alg": "HS256", "kid": key.thumbprint()}, body, hmac_key, algorithms=["HS256"]
    )
    unsigned = ".".join(
        [
            b64url(json.dumps({"alg": "none", "kid": key.thumbprint()}).encode()),
            b64url(json.dumps(body).encode()),
            "",
        ]
    )
    for bad in (forged, symmetric, unsigned, "garbage", "a.b.c"):
        response = token_with(http, bad, client_id=signer.client_id)
        assert response.status_code == 401, bad
        assert response.json()["error"] == "invalid_client"


def test_assertion_method_rules(
    http: httpx.Client, signer: Registered, machine: Registered, key: ECKey, settings: Settings
) -> None:
    good = assertion(key, signer.client_id, settings)
    both = http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": good,
        },
        auth=(signer.client_id, "x"),
    )
    assert both.status_code == 400
    assert both.json()["error"] == "invalid_request"
    wrong_type = http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion": good,
            "client_assertion_type": "urn:other",
        },
    )
    assert wrong_type.json()["error"] == "invalid_client"
    # A secret client cannot switch to assertions, nor an assertion client to a secret.
    as_secret_client = token_with(
        http, assertion(key, machine.client_id, settings), client_id=machine.client_id
    )
    assert as_secret_client.json()["error"] == "invalid_client"
    no_secret = http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(signer.client_id, "")
    )
    assert no_secret.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("jwks", "fragment"),
    [
        (
            {
                "keys": [
                    {
                        "kty": "RSA",
                        "kid": "huge",
                        "alg": "RS256",
                        "e": "AQAB",
                        "n": b64url(b"\xff" * 2048),
                    }
                ]
            },
            "RSA size",
        ),
        (
            {
                "keys": [
                    {
                        "kty": "EC",
                        "kid": str(i),
                        "alg": "ES256",
                        "crv": "P-256",
                        "x": "AA",
                        "y": "AA",
                    }
                    for i in range(2000)
                ]
            },
            "larger than|more than",
        ),
        ({"keys": [{"kty": "oct", "kid": "s", "alg": "HS256", "k": "c2VjcmV0"}]}, "public keys"),
        (
            {
                "keys": [
                    {
                        **ECKey.generate_key("P-256").as_dict(private=True),
                        "kid": "p",
                        "alg": "ES256",
                    }
                ]
            },
            "public keys",
        ),
        ({"keys": [{**ECKey.generate_key("P-256").as_dict(private=False), "kid": "a"}]}, "alg"),
        (
            {
                "keys": [
                    {
                        **ECKey.generate_key("P-256").as_dict(private=False),
                        "kid": str(i),
                        "alg": "ES256",
                    }
                    for i in range(11)
                ]
            },
            "more than 10",
        ),
        ({"keys": []}, "non-empty"),
        ([], "non-empty"),
    ],
)
def test_hostile_client_jwks_are_refused_at_registration(jwks: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_client_jwks(json.dumps(jwks))


def test_cli_registers_a_jwks(tmp_path: Path, key: ECKey) -> None:
    env = cli_env(tmp_path / "var", None)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public_jwks(key)))
    made = run_cli(["clients", "create", "--name", "svc", "--jwks-file", str(path), "--json"], env)
    assert made.code == 0, made.stderr
    assert made.json()["token_endpoint_auth_method"] == "private_key_jwt"
    assert "client_secret" not in made.json()
    path.write_text("{not json")
    bad = run_cli(["clients", "create", "--name", "svc", "--jwks-file", str(path)], env)
    assert bad.code == 2
    assert "--jwks-file" in bad.stderr
