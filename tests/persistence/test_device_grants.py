"""The device grant store's contract, on every backend: a user code names one grant, polls are
recorded with their pace, a grant is decided once and redeemed once, by its own client."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from tests.persistence.conftest import NOW, Stores, h
from tests.persistence.test_transactions import access, add_user
from tests.support import BACKENDS
from tokensmith.oauth.device_grants import MAX_POLL_INTERVAL, DeviceDecision, DeviceGrant

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


def grant(name: str, **overrides: object) -> DeviceGrant:
    values: dict[str, object] = {
        "device_code_hash": h(f"device-{name}"),
        "user_code_hash": h(f"user-{name}"),
        "client_id": "tv",
        "scope": "openid api:read",
        "created_at": NOW,
        "expires_at": NOW + 600,
        "poll_interval": 5,
    }
    values.update(overrides)
    return DeviceGrant(**values)  # type: ignore[arg-type]


async def approve(stores: Stores, name: str, at: int = NOW + 1) -> DeviceGrant | None:
    return await stores.device_grants.decide(
        h(f"device-{name}"), DeviceDecision(True, "u1", auth_time=NOW, session_id="s1"), now=at
    )


async def test_a_grant_comes_back_whole_by_either_code(stores: Stores) -> None:
    stored = grant("a", resource="https://api.example.com")
    assert await stores.device_grants.add(stored)
    assert await stores.device_grants.get(h("device-a")) == stored
    assert await stores.device_grants.find_by_user_code(h("user-a")) == stored
    assert await stores.device_grants.get(h("device-none")) is None
    assert await stores.device_grants.find_by_user_code(h("user-none")) is None


async def test_a_user_code_or_device_code_in_use_is_refused(stores: Stores) -> None:
    assert await stores.device_grants.add(grant("a"))
    clash = grant("b", user_code_hash=h("user-a"))
    assert not await stores.device_grants.add(clash)
    assert await stores.device_grants.get(h("device-b")) is None
    assert not await stores.device_grants.add(grant("c", device_code_hash=h("device-a")))


async def test_polls_on_time_keep_the_interval_and_early_ones_grow_it(stores: Stores) -> None:
    await stores.device_grants.add(grant("a"))
    first = await stores.device_grants.poll(h("device-a"), "tv", NOW)
    assert first is not None and not first.too_fast
    assert first.grant.last_polled_at == NOW and first.grant.poll_interval == 5
    early = await stores.device_grants.poll(h("device-a"), "tv", NOW + 4)
    assert early is not None and early.too_fast
    assert early.grant.poll_interval == 10  # RFC 8628 §3.5: +5 s for every later request
    again = await stores.device_grants.poll(h("device-a"), "tv", NOW + 9)  # 5 s: now too soon
    assert again is not None and again.too_fast and again.grant.poll_interval == 15
    on_time = await stores.device_grants.poll(h("device-a"), "tv", NOW + 24)
    assert on_time is not None and not on_time.too_fast and on_time.grant.poll_interval == 15


async def test_another_clients_poll_finds_nothing_and_changes_nothing(stores: Stores) -> None:
    await stores.device_grants.add(grant("a"))
    assert await stores.device_grants.poll(h("device-a"), "other", NOW) is None
    assert await stores.device_grants.poll(h("device-none"), "tv", NOW) is None
    assert await stores.device_grants.get(h("device-a")) == grant("a")


async def test_a_grant_is_decided_once_and_only_while_live(stores: Stores) -> None:
    await stores.device_grants.add(grant("a"))
    await stores.device_grants.add(grant("late", expires_at=NOW + 10))
    approved = await approve(stores, "a")
    assert approved is not None
    assert (approved.status, approved.user_id, approved.auth_time) == ("approved", "u1", NOW)
    assert approved.session_id == "s1" and approved.decided_at == NOW + 1
    denied = await stores.device_grants.decide(
        h("device-a"), DeviceDecision(False, "u2", auth_time=None, session_id=None), now=NOW + 2
    )
    assert denied is None
    assert await approve(stores, "late", at=NOW + 10) is None
    late = await stores.device_grants.get(h("device-late"))
    assert late is not None and late.status == "pending"


async def test_concurrent_decisions_have_one_winner(stores: Stores) -> None:
    await stores.device_grants.add(grant("a"))
    results = await asyncio.gather(*(approve(stores, "a") for _ in range(10)))
    assert sum(result is not None for result in results) == 1


async def test_an_approved_grant_is_redeemed_once_by_its_client(stores: Stores) -> None:
    await stores.device_grants.add(grant("a"))
    assert await stores.device_grants.redeem(h("device-a"), "tv", NOW) is None  # still pending
    await approve(stores, "a")
    assert await stores.device_grants.redeem(h("device-a"), "other", NOW + 2) is None
    results = await asyncio.gather(
        *(stores.device_grants.redeem(h("device-a"), "tv", NOW + 2) for _ in range(20))
    )
    won = [result for result in results if result is not None]
    assert len(won) == 1 and won[0].status == "redeemed" and won[0].user_id == "u1"
    assert await stores.device_grants.redeem(h("device-a"), "tv", NOW + 3) is None


async def test_an_expired_approval_is_not_redeemed(stores: Stores) -> None:
    await stores.device_grants.add(grant("a", expires_at=NOW + 5))
    await approve(stores, "a")
    assert await stores.device_grants.redeem(h("device-a"), "tv", NOW + 5) is None


async def test_a_clients_grants_are_deleted_with_it(stores: Stores) -> None:
    await stores.device_grants.add(grant("a"))
    await stores.device_grants.add(replace(grant("b"), client_id="other"))
    assert await stores.device_grants.delete_for_client("tv") == 1
    assert await stores.device_grants.get(h("device-a")) is None
    assert await stores.device_grants.get(h("device-b")) is not None


async def test_the_interval_grows_to_the_cap_and_stays(stores: Stores) -> None:
    await stores.device_grants.add(grant("a", poll_interval=50))
    await stores.device_grants.poll(h("device-a"), "tv", NOW)
    intervals = []
    for second in range(1, 5):  # four polls too soon: 55, 60, then 60 and 60
        early = await stores.device_grants.poll(h("device-a"), "tv", NOW + second)
        assert early is not None and early.too_fast
        intervals.append(early.grant.poll_interval)
    assert intervals == [55, MAX_POLL_INTERVAL, MAX_POLL_INTERVAL, MAX_POLL_INTERVAL]


async def redeemed(stores: Stores, name: str = "a") -> None:
    await stores.device_grants.add(grant(name))
    await approve(stores, name)
    assert await stores.device_grants.redeem(h(f"device-{name}"), "tv", NOW + 2) is not None


async def test_a_redeemed_grant_is_marked_replayed_once_by_its_own_client(stores: Stores) -> None:
    await redeemed(stores)
    assert not await stores.device_grants.mark_replayed(h("device-a"), "radio")
    assert await stores.device_grants.mark_replayed(h("device-a"), "tv")
    assert not await stores.device_grants.mark_replayed(h("device-a"), "tv")
    marked = await stores.device_grants.get(h("device-a"))
    assert marked is not None and marked.status == "replayed"
    await stores.device_grants.add(grant("b"))
    await approve(stores, "b")  # approved, not yet redeemed: nothing to mark
    assert not await stores.device_grants.mark_replayed(h("device-b"), "tv")


async def test_the_issue_guard_holds_for_a_redeemed_grant_of_an_enabled_user(
    stores: Stores,
) -> None:
    await add_user(stores)
    await redeemed(stores)
    tx = stores.tokens.transaction()
    await stores.tokens.add(access("j1"), tx)
    await stores.device_grants.guard_issue(h("device-a"), tx)
    assert await tx.commit()
    assert await stores.tokens.get_by_jti("j1") is not None


@pytest.mark.parametrize("why", ["replayed", "disabled user", "no user", "no grant"])
async def test_an_issue_guard_that_fails_stores_nothing(stores: Stores, why: str) -> None:
    if why != "no user":
        await add_user(stores, disabled=why == "disabled user")
    if why != "no grant":
        await redeemed(stores)
    if why == "replayed":
        assert await stores.device_grants.mark_replayed(h("device-a"), "tv")
    tx = stores.tokens.transaction()
    await stores.tokens.add(access("j1"), tx)
    await stores.device_grants.guard_issue(h("device-a"), tx)
    assert not await tx.commit()
    assert await stores.tokens.get_by_jti("j1") is None
