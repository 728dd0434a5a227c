"""The code and consent stores' contract, on every backend: a code is spent once, by its client."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from tests.persistence.conftest import NOW, Stores, h
from tests.support import BACKENDS
from tokensmith.oauth.grants import AuthorizationCode, Consent

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


def code(code_hash: bytes, **overrides: object) -> AuthorizationCode:
    values: dict[str, object] = {
        "code_hash": code_hash,
        "client_id": "c1",
        "user_id": "u1",
        "redirect_uri": "https://app.example.com/cb",
        "scope": "openid",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "created_at": NOW,
        "expires_at": NOW + 60,
    }
    values.update(overrides)
    return AuthorizationCode(**values)  # type: ignore[arg-type]


async def test_code_is_consumed_once(stores: Stores) -> None:
    await stores.codes.add(code(h("a"), nonce="n", auth_time=NOW - 5))
    # Another client's attempt does not spend the code.
    assert await stores.codes.consume(h("a"), "other-client", NOW) is None
    first = await stores.codes.consume(h("a"), "c1", NOW + 1)
    assert first is not None
    assert first.consumed_at == NOW + 1
    assert first.nonce == "n"
    assert await stores.codes.consume(h("a"), "c1", NOW + 30) is None
    replayed = await stores.codes.get(h("a"))
    assert replayed is not None
    assert replayed.consumed_at == NOW + 1
    assert await stores.codes.consume(h("unknown"), "c1", NOW) is None


async def test_twenty_concurrent_exchanges_of_one_code_succeed_once(stores: Stores) -> None:
    await stores.codes.add(code(h("race")))
    results = await asyncio.gather(*(stores.codes.consume(h("race"), "c1", NOW) for _ in range(20)))
    assert sum(result is not None for result in results) == 1


async def test_a_code_comes_back_whole(stores: Stores) -> None:
    issued = code(
        h("full"),
        scope="openid api",
        nonce="n-1",
        auth_time=NOW - 30,
        session_id="s-ref",
        resource="https://api.example.com",
    )
    await stores.codes.add(issued)
    assert await stores.codes.get(h("full")) == issued
    spent = await stores.codes.consume(h("full"), "c1", NOW + 2)
    assert spent == replace(issued, consumed_at=NOW + 2)
    with pytest.raises(stores.duplicate):
        await stores.codes.add(code(h("full")))


async def test_a_replay_is_marked_once(stores: Stores) -> None:
    await stores.codes.add(code(h("r")))
    await stores.codes.mark_replayed(h("r"), NOW + 5)
    await stores.codes.mark_replayed(h("r"), NOW + 9)  # the first mark stands
    await stores.codes.mark_replayed(h("unknown"), NOW)
    marked = await stores.codes.get(h("r"))
    assert marked is not None and marked.replayed_at == NOW + 5 and marked.consumed_at is None


async def test_a_clients_codes_go_with_it_spent_or_not(stores: Stores) -> None:
    await stores.codes.add(code(h("x1")))
    await stores.codes.add(code(h("x2")))
    await stores.codes.add(code(h("other"), client_id="c2"))
    await stores.codes.consume(h("x1"), "c1", NOW)
    assert await stores.codes.delete_for_client("c1") == 2
    assert await stores.codes.get(h("x1")) is None and await stores.codes.get(h("x2")) is None
    assert await stores.codes.get(h("other")) is not None
    assert await stores.codes.delete_for_client("c1") == 0


async def test_expired_codes_are_purged(stores: Stores) -> None:
    await stores.codes.add(code(h("old"), expires_at=NOW - 1))
    await stores.codes.add(code(h("new")))
    assert await stores.codes.purge_expired(NOW) == 1
    assert await stores.codes.get(h("new")) is not None


async def test_a_purge_takes_at_most_its_limit(stores: Stores) -> None:
    for i in range(5):
        await stores.codes.add(code(h(f"old-{i}"), expires_at=NOW - 1))
    await stores.codes.add(code(h("at-the-cut"), expires_at=NOW))
    assert await stores.codes.purge_expired(NOW, limit=2) == 2
    assert await stores.codes.purge_expired(NOW, limit=2) == 2
    assert await stores.codes.purge_expired(NOW, limit=2) == 1
    assert await stores.codes.purge_expired(NOW, limit=2) == 0
    assert await stores.codes.get(h("at-the-cut")) is not None


async def test_consents(stores: Stores) -> None:
    assert await stores.consents.get("u1", "c1") is None
    await stores.consents.put(Consent("u1", "c1", "openid", NOW))
    await stores.consents.put(Consent("u1", "c1", "openid profile", NOW + 1))
    stored = await stores.consents.get("u1", "c1")
    assert stored == Consent("u1", "c1", "openid profile", NOW + 1)
    assert await stores.consents.revoke("u1", "c1")
    assert await stores.consents.get("u1", "c1") is None


async def test_a_consent_is_one_users_for_one_client(stores: Stores) -> None:
    await stores.consents.put(Consent("u1", "c1", "openid", NOW))
    await stores.consents.put(Consent("u1", "c2", "api", NOW))
    await stores.consents.put(Consent("u2", "c1", "profile", NOW))
    assert not await stores.consents.revoke("u1", "c3")
    assert await stores.consents.revoke("u1", "c1")
    assert not await stores.consents.revoke("u1", "c1")
    assert await stores.consents.get("u1", "c2") == Consent("u1", "c2", "api", NOW)
    assert await stores.consents.get("u2", "c1") == Consent("u2", "c1", "profile", NOW)


async def test_a_codes_dpop_key_is_kept(stores: Stores) -> None:
    await stores.codes.add(code(h("bound"), dpop_jkt="thumb"))
    spent = await stores.codes.consume(h("bound"), "c1", NOW)
    assert spent is not None and spent.dpop_jkt == "thumb"
