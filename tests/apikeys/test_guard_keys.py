"""The guard checking real API keys: over HTTP against a running server, and in process."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.apikeys.test_http import create
from tests.support import ServerThread
from tokensmith.apikeys.lifecycle import NewApiKey
from tokensmith.guard import Guard, InvalidToken, RemoteApiKeyVerifier
from tokensmith.guard.credentials import Credential
from tokensmith.guard.errors import ForbiddenSource
from tokensmith.guard.local_keys import LocalApiKeyVerifier
from tokensmith.runtime.services import Services


def test_the_guard_asks_a_running_server(
    server: ServerThread, http: httpx.Client, admin_token: str
) -> None:
    created = create(http, admin_token, scope="orders:read", allowed_cidrs=["127.0.0.0/8"])
    url = server.base_url + "/api-keys/verify"
    blocking = RemoteApiKeyVerifier(url, cache_seconds=0)
    key = Credential("api_key", created["key"])
    try:
        principal = Guard(api_keys=blocking).authenticate_blocking(key, None)
        assert principal.token_id == created["key_id"] and principal.scopes == {"orders:read"}

        async def from_async_code() -> str:
            verifier = RemoteApiKeyVerifier(url, cache_seconds=0)
            try:
                return (await Guard(api_keys=verifier).authenticate(key, None)).kind
            finally:
                await verifier.aclose()

        assert asyncio.run(from_async_code()) == "api_key"
        revoke = f"/admin/api-keys/{created['key_id']}/revoke"
        http.post(revoke, headers={"authorization": f"Bearer {admin_token}"})
        with pytest.raises(InvalidToken):
            Guard(api_keys=blocking).authenticate_blocking(key, None)
    finally:
        asyncio.run(blocking.aclose())


@pytest.mark.anyio
async def test_the_guard_in_process(services: Services) -> None:
    issued = await services.key_manager.create(
        NewApiKey(name="svc", owner="team", scope="a b", allowed_cidrs=("10.0.0.0/8",)), "tester"
    )
    guard = Guard(api_keys=LocalApiKeyVerifier(services.key_verifier))
    principal = await guard.authenticate(Credential("api_key", issued.key), "10.1.1.1")
    assert (principal.subject, principal.token_id) == ("team", issued.record.key_id)
    with pytest.raises(ForbiddenSource):
        await guard.authenticate(Credential("api_key", issued.key), "192.0.2.1")
    with pytest.raises(InvalidToken, match="checksum"):
        await guard.authenticate(Credential("api_key", issued.key[:-1] + "!"), "10.1.1.1")
    with pytest.raises(TypeError):
        LocalApiKeyVerifier(services.key_verifier).check_blocking(issued.key, None)


ORDERS = "https://orders.example"
BILLING = "https://billing.example"


def test_a_bound_key_reaches_only_its_audience_through_a_running_server(
    server: ServerThread, http: httpx.Client, admin_token: str
) -> None:
    # Case 60 on the API-key path: the key's verify answer names its audiences, and the guard
    # of another resource refuses it; an unbound key stays good for any resource.
    bound = create(http, admin_token, audiences=[ORDERS, ORDERS + "/v2"])
    unbound = create(http, admin_token)
    answer = http.post("/api-keys/verify", headers={"x-api-key": bound["key"]}).json()
    assert answer["aud"] == [ORDERS, ORDERS + "/v2"]
    assert "aud" not in http.post("/api-keys/verify", headers={"x-api-key": unbound["key"]}).json()
    verifier = RemoteApiKeyVerifier(server.base_url + "/api-keys/verify", cache_seconds=0)
    try:
        orders = Guard(api_keys=verifier, audiences=[ORDERS])
        billing = Guard(api_keys=verifier, audiences=[BILLING])
        assert orders.authenticate_blocking(Credential("api_key", bound["key"]), None)
        with pytest.raises(InvalidToken, match=r"billing\.example"):
            billing.authenticate_blocking(Credential("api_key", bound["key"]), None)
        assert billing.authenticate_blocking(Credential("api_key", unbound["key"]), None)
    finally:
        asyncio.run(verifier.aclose())


@pytest.mark.parametrize(
    "audiences",
    [
        ["orders"],
        ["ftp://orders.example"],
        ["https://orders.example#x"],
        ["https://"],
        [5],
        ["https://a.example/" + "x" * 300],
        [f"https://{i}.example" for i in range(11)],
    ],
    ids=["relative", "scheme", "fragment", "no-host", "not-text", "long", "too-many"],
)
def test_a_key_cannot_be_bound_to_a_malformed_audience(
    http: httpx.Client, admin_token: str, audiences: list[object]
) -> None:
    response = http.post(
        "/admin/api-keys",
        json={"name": "n", "scope": "a", "audiences": audiences},
        headers={"authorization": f"Bearer {admin_token}"},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.anyio
async def test_a_bound_key_keeps_its_audiences_in_process_and_through_rotation(
    services: Services,
) -> None:
    issued = await services.key_manager.create(
        NewApiKey(name="svc", owner="team", scope="a", audiences=(ORDERS,)), "tester"
    )
    rotated = await services.key_manager.rotate(issued.record.key_id, "tester", grace=60)
    assert rotated.record.audiences == (ORDERS,)
    stored = await services.key_manager.get(rotated.record.key_id)
    assert stored.audiences == (ORDERS,)
    local = LocalApiKeyVerifier(services.key_verifier)
    with pytest.raises(InvalidToken):
        await Guard(api_keys=local, audiences=[BILLING]).authenticate(
            Credential("api_key", rotated.key), None
        )
    principal = await Guard(api_keys=local, audiences=[ORDERS]).authenticate(
        Credential("api_key", rotated.key), None
    )
    assert principal.audience == (ORDERS,)
