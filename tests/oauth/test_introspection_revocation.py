"""RFC 7662 introspection and RFC 7009 revocation over real HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.oauth.conftest import Registered, Registrar
from tokensmith.jose.jws import sign_jwt
from tokensmith.oauth.clients import NewClient
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

# Above storage: SQLite only (the storage suites, and test_authorization, run on both databases).


def issue(http: httpx.Client, client: Registered, **form: str) -> str:
    assert client.secret is not None
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", **form},
        auth=(client.client_id, client.secret),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def introspect(http: httpx.Client, caller: Registered, token: str) -> dict[str, object]:
    assert caller.secret is not None
    response = http.post(
        "/introspect", data={"token": token}, auth=(caller.client_id, caller.secret)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


def revoke(http: httpx.Client, caller: Registered, token: str, **form: str) -> httpx.Response:
    assert caller.secret is not None
    return http.post(
        "/revoke", data={"token": token, **form}, auth=(caller.client_id, caller.secret)
    )


@pytest.fixture
def opaque(register: Registrar) -> Registered:
    return register(
        NewClient(
            "opaque",
            grant_types=("client_credentials",),
            scope="api:read",
            access_token_format="opaque",
        )
    )


@pytest.fixture
def resource_server(register: Registrar) -> Registered:
    return register(NewClient("orders-api", grant_types=("client_credentials",)))


@pytest.mark.parametrize("kind", ["jwt", "opaque"])
def test_introspect_then_revoke(
    http: httpx.Client,
    machine: Registered,
    opaque: Registered,
    resource_server: Registered,
    settings: Settings,
    kind: str,
) -> None:
    owner = machine if kind == "jwt" else opaque
    token = issue(http, owner, scope="api:read")
    active = introspect(http, resource_server, token)
    assert active["active"] is True
    assert active["client_id"] == owner.client_id
    assert active["sub"] == owner.client_id
    assert active["scope"] == "api:read"
    assert active["iss"] == settings.issuer
    assert active["aud"] == settings.issuer
    assert active["token_type"] == "Bearer"
    assert isinstance(active["exp"], int)

    # Another client cannot revoke it; the answer does not say so.
    assert revoke(http, resource_server, token).status_code == 200
    assert introspect(http, resource_server, token)["active"] is True

    response = revoke(http, owner, token, token_type_hint="access_token")
    assert response.status_code == 200
    assert response.content == b""
    assert introspect(http, resource_server, token) == {"active": False}
    assert revoke(http, owner, token).status_code == 200  # again: still fine


def test_concurrent_revocations_of_one_jwt(
    http: httpx.Client, machine: Registered, resource_server: Registered, server: object
) -> None:
    token = issue(http, machine)
    base = str(http.base_url)

    async def many() -> list[int]:
        async with httpx.AsyncClient(base_url=base) as client:
            assert machine.secret is not None
            calls = [
                client.post(
                    "/revoke", data={"token": token}, auth=(machine.client_id, machine.secret)
                )
                for _ in range(10)
            ]
            return [r.status_code for r in await asyncio.gather(*calls)]

    assert asyncio.run(many()) == [200] * 10
    assert introspect(http, resource_server, token) == {"active": False}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "tsat_unknown",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "tsat_" + "A" * 43,
        "x" * 8000,
    ],
)
def test_anything_invalid_is_only_inactive(
    http: httpx.Client, resource_server: Registered, token: str
) -> None:
    assert resource_server.secret is not None
    response = http.post(
        "/introspect",
        data={"token": token},
        auth=(resource_server.client_id, resource_server.secret),
    )
    if token == "":
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
    else:
        assert response.json() == {"active": False}
    assert revoke(http, resource_server, token or "x").status_code == 200


def test_expired_token_is_inactive(
    http: httpx.Client, register: Registrar, resource_server: Registered
) -> None:
    short = register(NewClient("short", grant_types=("client_credentials",), access_token_ttl=1))
    short_opaque = register(
        NewClient(
            "short-opaque",
            grant_types=("client_credentials",),
            access_token_ttl=1,
            access_token_format="opaque",
        )
    )
    tokens = [issue(http, short), issue(http, short_opaque)]
    time.sleep(2.1)
    for token in tokens:
        assert introspect(http, resource_server, token) == {"active": False}


def test_jwts_that_are_not_access_tokens_are_inactive(
    http: httpx.Client, resource_server: Registered, settings: Settings
) -> None:
    """Signed by our own key, but an ID token (typ JWT) or another issuer's claims: not active."""

    async def forge() -> list[str]:
        services = await open_services(settings)
        try:
            key = services.keyring.active
            now = int(time.time())
            base = {
                "sub": "u",
                "client_id": "c",
                "aud": "a",
                "iat": now,
                "exp": now + 60,
                "jti": "j1",
            }
            return [
                sign_jwt(key, {**base, "iss": settings.issuer}, typ="JWT"),
                sign_jwt(key, {**base, "iss": settings.issuer + ".evil"}, typ="at+jwt"),
                sign_jwt(key, {**base, "iss": settings.issuer[:-2]}, typ="at+jwt"),
                sign_jwt(key, {**base, "iss": settings.issuer, "exp": "soon"}, typ="at+jwt"),
                sign_jwt(key, {**base, "iss": settings.issuer, "iat": now + 3600}, typ="at+jwt"),
                sign_jwt(
                    key,
                    {k: v for k, v in base.items() if k != "jti"} | {"iss": settings.issuer},
                    typ="at+jwt",
                ),
            ]
        finally:
            await services.close()

    for token in asyncio.run(forge()):
        assert introspect(http, resource_server, token) == {"active": False}


def test_introspection_requires_a_confidential_client(
    http: httpx.Client, register: Registrar, machine: Registered
) -> None:
    token = issue(http, machine)
    anonymous = http.post("/introspect", data={"token": token})
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "error": "invalid_client",
        "error_description": "client authentication is required",
    }
    assert "www-authenticate" in anonymous.headers
    public = register(
        NewClient("spa", is_public=True, redirect_uris=("https://app.example.com/cb",))
    )
    as_public = http.post("/introspect", data={"token": token, "client_id": public.client_id})
    assert as_public.status_code == 401
    wrong = http.post("/introspect", data={"token": token}, auth=(machine.client_id, "wrong"))
    assert wrong.status_code == 401


def test_revocation_requires_client_authentication(http: httpx.Client, machine: Registered) -> None:
    token = issue(http, machine)
    assert http.post("/revoke", data={"token": token}).status_code == 401
    missing = http.post("/revoke", data={}, auth=(machine.client_id, machine.secret or ""))
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"


@pytest.mark.usefixtures("alice")
def test_refresh_tokens_can_be_revoked_and_introspected_by_their_client(
    server: object, http: httpx.Client, web_app: Registered, resource_server: Registered
) -> None:
    from tests.oauth.test_authorization import refresh, tokens_for

    tokens = tokens_for(server, http, web_app)  # type: ignore[arg-type]
    mine = introspect(http, web_app, tokens["refresh_token"])
    assert mine["active"] is True
    assert mine["token_type"] == "refresh_token"
    assert introspect(http, resource_server, tokens["refresh_token"]) == {"active": False}
    assert revoke(http, resource_server, tokens["refresh_token"]).status_code == 200  # not theirs
    assert introspect(http, web_app, tokens["refresh_token"])["active"] is True
    assert (
        revoke(http, web_app, tokens["refresh_token"], token_type_hint="refresh_token").status_code
        == 200
    )
    assert introspect(http, web_app, tokens["refresh_token"]) == {"active": False}
    assert refresh(http, web_app, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    # RFC 7009 §2.1: revoking the refresh token also ends the access tokens of its grant.
    assert introspect(http, resource_server, tokens["access_token"]) == {"active": False}
