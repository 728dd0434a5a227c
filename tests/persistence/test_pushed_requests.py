"""The pushed request store's contract, on every backend: a request comes back once, only to the
client that pushed it, only before it expires; a refused use changes nothing."""

from __future__ import annotations

import asyncio

import pytest

from tests.persistence.conftest import NOW, Stores, h
from tests.support import BACKENDS
from tokensmith.oauth.pushed_requests import PushedRequest

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]

PARAMS = {
    "response_type": "code",
    "redirect_uri": "https://app.example.com/callback",
    "resource": ["https://a.example.com", "https://b.example.com"],
}


def pushed(name: str, client_id: str = "web", ttl: int = 60) -> PushedRequest:
    return PushedRequest(h(name), client_id, PARAMS, NOW, NOW + ttl)


async def test_a_request_is_consumed_once_with_its_parameters(stores: Stores) -> None:
    await stores.pushed_requests.add(pushed("a"))
    used = await stores.pushed_requests.consume(h("a"), "web", NOW + 1)
    assert used is not None
    assert used.params == PARAMS and used.client_id == "web" and used.used_at == NOW + 1
    assert await stores.pushed_requests.consume(h("a"), "web", NOW + 2) is None


async def test_another_clients_use_is_refused_and_changes_nothing(stores: Stores) -> None:
    await stores.pushed_requests.add(pushed("a"))
    assert await stores.pushed_requests.consume(h("a"), "intruder", NOW + 1) is None
    assert await stores.pushed_requests.consume(h("a"), "web", NOW + 1) is not None


async def test_expired_and_unknown_requests_are_refused(stores: Stores) -> None:
    await stores.pushed_requests.add(pushed("a", ttl=60))
    assert await stores.pushed_requests.consume(h("a"), "web", NOW + 60) is None
    assert await stores.pushed_requests.consume(h("unknown"), "web", NOW) is None


async def test_a_request_uri_is_stored_once(stores: Stores) -> None:
    await stores.pushed_requests.add(pushed("a"))
    with pytest.raises(stores.duplicate):
        await stores.pushed_requests.add(pushed("a", client_id="other"))


async def test_of_concurrent_uses_exactly_one_wins(stores: Stores) -> None:
    await stores.pushed_requests.add(pushed("a"))
    results = await asyncio.gather(
        *(stores.pushed_requests.consume(h("a"), "web", NOW + 1) for _ in range(10))
    )
    assert sum(r is not None for r in results) == 1


async def test_purge_removes_only_what_expired(stores: Stores) -> None:
    await stores.pushed_requests.add(pushed("old", ttl=10))
    await stores.pushed_requests.add(pushed("new", ttl=60))
    assert await stores.pushed_requests.purge_expired(NOW + 30) == 1
    assert await stores.pushed_requests.consume(h("old"), "web", NOW) is None
    assert await stores.pushed_requests.consume(h("new"), "web", NOW) is not None
