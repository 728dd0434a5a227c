"""SECURITY.md case 62: deleting a client ends its tokens, refresh tokens and codes at once.

Deleting through the admin API takes effect at once in that process; a deletion made by another
process (the CLI) is seen once the server's client cache, at most one second, has expired.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_authorization import exchange, login_and_get_code
from tests.support import OFFERED, ServerThread
from tokensmith.core.secrets import keyed_hash
from tokensmith.oauth.client_removal import delete_client
from tokensmith.oauth.clients import NewClient
from tokensmith.persistence.repositories.clients import CLIENT_CACHE_SECONDS
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

pytestmark = pytest.mark.usefixtures("alice")


def client_token(http: httpx.Client, client: Registered, scope: str) -> str:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client.client_id, client.secret or ""),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def introspect(http: httpx.Client, caller: Registered, token: str) -> object:
    response = http.post(
        "/introspect", data={"token": token}, auth=(caller.client_id, caller.secret or "")
    )
    return response.json()["active"]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def console(register: Registrar) -> Registered:
    return register(
        NewClient("console", grant_types=("client_credentials",), scope="tokensmith:admin")
    )


def reregister(settings: Settings, client_id: str) -> None:
    """A client registered again under the old id must not inherit anything."""

    async def add() -> None:
        services = await open_services(settings)
        try:
            client = NewClient(
                "again",
                grant_types=("authorization_code", "refresh_token"),
                redirect_uris=("https://app.example.com/callback",),
                scope="openid api:read",
            ).validated(
                client_id,
                keyed_hash(services.master.pepper, "s"),
                services.clock.now(),
                offered=OFFERED,
            )
            await services.clients.add(client)
        finally:
            await services.close()

    asyncio.run(add())


def test_deleting_through_the_admin_api_ends_everything_at_once(
    server: ServerThread,
    http: httpx.Client,
    web_app: Registered,
    console: Registered,
    settings: Settings,
) -> None:
    outcome, verifier = login_and_get_code(server, web_app)
    tokens = exchange(http, web_app, outcome.query["code"], verifier).json()
    pending, pending_verifier = login_and_get_code(server, web_app)
    admin = client_token(http, console, "tokensmith:admin")
    assert introspect(http, console, tokens["access_token"]) is True
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 200

    deleted = http.delete(f"/admin/clients/{web_app.client_id}", headers=bearer(admin))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["families_revoked"] == 1
    assert http.delete(f"/admin/clients/{web_app.client_id}", headers=bearer(admin)).json() == {
        "error": "not_found",
        "error_description": "no such client",
    }

    assert introspect(http, console, tokens["access_token"]) is False
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    gone = http.post("/token", data=refresh, auth=(web_app.client_id, web_app.secret or ""))
    assert gone.status_code == 401 and gone.json()["error"] == "invalid_client"
    code = exchange(http, web_app, pending.query["code"], pending_verifier)
    assert code.json()["error"] == "invalid_client"

    # The records themselves are revoked, not only hidden behind the missing client.
    reregister(settings, web_app.client_id)
    time.sleep(CLIENT_CACHE_SECONDS + 0.1)  # the server remembers the id as unknown till then
    again = Registered(web_app.client_id, "s")
    refused = http.post("/token", data=refresh, auth=(again.client_id, "s"))
    assert refused.json()["error"] == "invalid_grant"
    code = exchange(http, again, pending.query["code"], pending_verifier)
    assert code.json()["error"] == "invalid_grant"
    assert introspect(http, console, tokens["access_token"]) is False


def test_deleting_from_another_process_ends_tokens_within_the_cache_bound(
    server: ServerThread,
    http: httpx.Client,
    register: Registrar,
    console: Registered,
    settings: Settings,
) -> None:
    opaque = register(
        NewClient(
            "opaque",
            grant_types=("client_credentials",),
            scope="api:read",
            access_token_format="opaque",
        )
    )
    other_admin = register(
        NewClient("ops", grant_types=("client_credentials",), scope="tokensmith:admin")
    )
    handle = client_token(http, opaque, "api:read")
    jwt = client_token(http, other_admin, "tokensmith:admin")  # never stored: nothing to revoke
    assert http.get("/admin/audit", headers=bearer(jwt)).status_code == 200

    async def delete_both() -> None:  # what `tokensmith clients delete` does, in its process
        services = await open_services(settings)
        try:
            for client in (opaque, other_admin):
                removal = await delete_client(services, client.client_id, services.clock.now())
                assert removal.deleted
        finally:
            await services.close()

    asyncio.run(delete_both())
    # The opaque token's record is revoked: refused at once, whatever the cache holds.
    assert introspect(http, console, handle) is False
    time.sleep(CLIENT_CACHE_SECONDS + 0.1)
    assert http.get("/admin/audit", headers=bearer(jwt)).status_code == 401
    assert introspect(http, console, jwt) is False
