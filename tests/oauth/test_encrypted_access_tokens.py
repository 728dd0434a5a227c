"""Access tokens encrypted to their resource (TOKENSMITH_RESOURCE_ENCRYPTION_KEYS): signed, then
encrypted; opened by the guard with the resource's private key through real HTTP, by joserfc
and PyJWT in the test; introspected and revoked by their record; refused with invalid_target
when the audience mixes them with other resources, before any state changes (SECURITY.md
cases 122, 64)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwe
from joserfc.jwk import ECKey, RSAKey

from tests.guard.servers import asgi_server
from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_authorization import CALLBACK, exchange, login_and_get_code, refresh
from tests.oauth.test_client_credentials import verify_with_published_jwks
from tests.support import ServerThread
from tokensmith.errors import ConfigError
from tokensmith.guard import Credential, Guard, Introspector
from tokensmith.guard.asgi import GuardMiddleware, principal_of
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.device_authorization import DEVICE_CODE_GRANT
from tokensmith.oauth.exchange_policy import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT
from tokensmith.settings import Settings, load_settings

SEALED = "https://vault.example.com"  # encrypted to an RSA key given inline
FILED = "https://ledger.example.com"  # encrypted to an EC key in a JWKS file
PLAIN = "https://orders.example.com"
RSA = RSAKey.generate_key(2048, parameters={"kid": "vault-1"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ledger-1", "use": "enc"})


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    jwks = tmp_path / "ledger.jwks"
    jwks.write_text(json.dumps({"keys": [EC.as_dict(private=False)]}))
    keys = {SEALED: RSA.as_dict(private=False), FILED: str(jwks)}
    return settings.model_copy(update={"resource_encryption_keys": json.dumps(keys)})


@pytest.fixture
def worker(register: Registrar) -> Registered:
    return register(NewClient("w", scope="api:read", allowed_resources=(SEALED, FILED, PLAIN)))


def grant(http: httpx.Client, client: Registered, *resources: str, **form: str) -> httpx.Response:
    data: dict[str, Any] = {"grant_type": "client_credentials", "resource": list(resources)}
    return http.post("/token", data={**data, **form}, auth=(client.client_id, client.secret or ""))


def test_tokens_for_an_encrypting_resource_are_nested_jwts(
    http: httpx.Client, worker: Registered
) -> None:
    for resource, key, alg in ((SEALED, RSA, "RSA-OAEP-256"), (FILED, EC, "ECDH-ES")):
        response = grant(http, worker, resource, scope="api:read")
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        assert token.count(".") == 4
        opened = jwe.decrypt_compact(token, key, algorithms=[alg, "A256GCM"])
        assert opened.protected["cty"] == "JWT" and opened.protected["kid"] == key.kid
        assert opened.plaintext is not None
        claims = verify_with_published_jwks(http, opened.plaintext.decode(), resource)
        assert claims["client_id"] == worker.client_id and claims["scope"] == "api:read"
    plain = grant(http, worker, PLAIN).json()["access_token"]
    assert plain.count(".") == 2


def test_introspection_and_revocation_find_them_by_record(
    http: httpx.Client, worker: Registered, machine: Registered
) -> None:
    token = grant(http, worker, SEALED).json()["access_token"]
    auth = (machine.client_id, machine.secret or "")
    info = http.post("/introspect", data={"token": token}, auth=auth).json()
    assert info["active"] is True and info["aud"] == SEALED
    assert info["client_id"] == worker.client_id
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BA")
    assert http.post("/introspect", data={"token": tampered}, auth=auth).json() == {"active": False}
    revoked = http.post(
        "/revoke", data={"token": token}, auth=(worker.client_id, worker.secret or "")
    )
    assert revoked.status_code == 200
    assert http.post("/introspect", data={"token": token}, auth=auth).json() == {"active": False}


def test_a_resource_trades_an_encrypted_token_it_was_sent(
    http: httpx.Client, worker: Registered, register: Registrar
) -> None:
    """Token exchange finds an encrypted subject token by its record, as introspection does."""
    vault = register(
        NewClient(
            "vault",
            grant_types=(TOKEN_EXCHANGE_GRANT,),
            scope="api:read",
            allowed_resources=(PLAIN,),
            token_exchange={"accept_audiences": [SEALED], "audiences": [PLAIN]},
        )
    )
    token = grant(http, worker, SEALED, scope="api:read").json()["access_token"]
    form = {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": PLAIN,
    }
    auth = (vault.client_id, vault.secret or "")
    traded = http.post("/token", data=form, auth=auth)
    assert traded.status_code == 200, traded.text
    claims = verify_with_published_jwks(http, traded.json()["access_token"], PLAIN)
    assert claims["sub"] == worker.client_id and claims["client_id"] == vault.client_id
    tampered = {**form, "subject_token": token[:-2] + ("AA" if token[-2:] != "AA" else "BA")}
    refused = http.post("/token", data=tampered, auth=auth)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


@pytest.fixture
def api(server: ServerThread) -> Iterator[str]:
    """The vault's API behind the guard, holding the vault's private key and requiring it."""
    guard = Guard.for_issuer(
        server.base_url,
        audience=SEALED,
        decryption_keys=[RSA.as_dict(private=True)],
        require_encryption=True,
    )

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        body = json.dumps({"sub": principal_of(scope).subject}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    with asgi_server(GuardMiddleware(inner, guard, scopes=["api:read"])) as base:
        yield base


def test_the_guard_opens_them_with_the_resource_key(
    http: httpx.Client, worker: Registered, api: str
) -> None:
    token = grant(http, worker, SEALED, scope="api:read").json()["access_token"]
    answer = httpx.get(api + "/", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"sub": worker.client_id}
    # A plain token for the same audience cannot be had, nor one for another resource passed.
    other = grant(http, worker, FILED, scope="api:read").json()["access_token"]
    refused = httpx.get(api + "/", headers={"authorization": f"Bearer {other}"})
    assert refused.status_code == 401


def test_a_guard_without_the_key_refuses_them(
    server: ServerThread, http: httpx.Client, worker: Registered
) -> None:
    token = grant(http, worker, SEALED).json()["access_token"]
    guard = Guard.for_issuer(server.base_url, audience=SEALED)
    with pytest.raises(Exception, match="not accepted here"):
        asyncio.run(guard.authenticate(Credential("bearer", token)))


def test_a_guard_without_the_key_asks_introspection(
    server: ServerThread, http: httpx.Client, worker: Registered, machine: Registered
) -> None:
    token = grant(http, worker, SEALED, scope="api:read").json()["access_token"]
    local = Guard.for_issuer(server.base_url, audience=SEALED)
    assert machine.secret is not None
    introspector = Introspector(
        server.base_url + "/introspect",
        client_id=machine.client_id,
        client_secret=machine.secret,
        issuer=server.base_url,
    )
    guard = Guard(jwt=local.jwt, jwks=local.jwks, introspector=introspector, audiences=[SEALED])
    assert guard.authenticate_blocking(Credential("bearer", token)).subject == worker.client_id

    async def scenario() -> None:
        principal = await guard.authenticate(Credential("bearer", token))
        assert principal.kind == "opaque" and principal.client_id == worker.client_id
        await guard.aclose()

    asyncio.run(scenario())


def test_mixed_audiences_are_invalid_target(http: httpx.Client, worker: Registered) -> None:
    for resources in ((SEALED, PLAIN), (PLAIN, FILED), (SEALED, FILED)):
        response = grant(http, worker, *resources)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_target"
    assert grant(http, worker, PLAIN, PLAIN).status_code == 200  # one resource, named twice


def test_refusals_spend_neither_code_nor_refresh_token(
    server: ServerThread, http: httpx.Client, register: Registrar, alice: str
) -> None:
    app = register(
        NewClient(
            "app",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(CALLBACK,),
            scope="openid api:read",
            allowed_resources=(SEALED, PLAIN),
        )
    )
    outcome, verifier = login_and_get_code(server, app)
    code = outcome.query["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    mixed = http.post(
        "/token",
        data={**form, "code_verifier": verifier, "resource": [SEALED, PLAIN]},
        auth=(app.client_id, app.secret or ""),
    )
    assert mixed.status_code == 400 and mixed.json()["error"] == "invalid_target"
    tokens = exchange(http, app, code, verifier)  # the code was not spent
    assert tokens.status_code == 200, tokens.text
    refresh_token = tokens.json()["refresh_token"]
    refused = refresh(http, app, refresh_token, resource=SEALED + " " + PLAIN)
    assert refused.status_code == 400
    both = http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "resource": [SEALED, PLAIN],
        },
        auth=(app.client_id, app.secret or ""),
    )
    assert both.json()["error"] == "invalid_target"
    sealed = refresh(http, app, refresh_token, resource=SEALED)  # not rotated by the refusals
    assert sealed.status_code == 200, sealed.text
    assert sealed.json()["access_token"].count(".") == 4


def test_a_device_authorization_for_mixed_audiences_is_refused(
    http: httpx.Client, register: Registrar
) -> None:
    tv = register(
        NewClient(
            "tv",
            is_public=True,
            grant_types=(DEVICE_CODE_GRANT,),
            scope="api:read",
            allowed_resources=(SEALED, PLAIN),
        )
    )
    form = {"client_id": tv.client_id, "resource": [SEALED, PLAIN]}
    refused = http.post("/device_authorization", data=form)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_target"
    sealed = http.post("/device_authorization", data={**form, "resource": [SEALED]})
    assert sealed.status_code == 200, sealed.text


def test_opaque_tokens_are_unaffected(http: httpx.Client, register: Registrar) -> None:
    opaque = register(
        NewClient("o", scope="api:read", allowed_resources=(SEALED,), access_token_format="opaque")
    )
    token = grant(http, opaque, SEALED).json()["access_token"]
    assert token.startswith("tsat_")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("{not json", "not JSON"),
        ('["https://a.example"]', "JSON object"),
        ('{"vault": {}}', "absolute http(s) URI"),
        (json.dumps({SEALED: {**RSA.as_dict(private=False), "alg": "RSA1_5"}}), "RSA1_5"),
        (json.dumps({SEALED: {**RSA.as_dict(private=False), "alg": "dir"}}), "not supported"),
        (json.dumps({SEALED: RSA.as_dict(private=True)}), "public key"),
        (json.dumps({SEALED: {**RSA.as_dict(private=False), "use": "sig"}}), "not for encryption"),
        (json.dumps({SEALED: "/nonexistent/vault.jwks"}), "cannot read"),
        (json.dumps({SEALED: 42}), "neither a JWK"),
    ],
)
def test_bad_resource_keys_fail_at_start(
    monkeypatch: pytest.MonkeyPatch, value: str, fragment: str
) -> None:
    monkeypatch.setenv("TOKENSMITH_RESOURCE_ENCRYPTION_KEYS", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "TOKENSMITH_RESOURCE_ENCRYPTION_KEYS" in message and fragment in message
