"""The refresh store's contract, on every backend: rotate once, reuse seen, families revoked."""

from __future__ import annotations

import asyncio

import pytest

from tests.persistence.conftest import NOW, Stores, h
from tests.support import BACKENDS
from tokensmith.oauth.tokens import RefreshFamily, RefreshToken

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


def refresh(token_hash: bytes, family: str = "f1", expires: int = NOW + 3600) -> RefreshToken:
    return RefreshToken(token_hash, family, "openid offline_access", NOW, expires)


async def new_family(stores: Stores, family_id: str = "f1", **fields: object) -> RefreshFamily:
    values: dict[str, object] = {"session_id": "s1", **fields}
    family = RefreshFamily(family_id, "c1", "u1", "openid offline_access", NOW, **values)  # type: ignore[arg-type]
    await stores.refresh.create_family(family, refresh(h(f"{family_id}-0"), family_id))
    return family


async def test_refresh_rotation_and_reuse(stores: Stores) -> None:
    await new_family(stores)
    first = await stores.refresh.rotate(h("f1-0"), refresh(h("f1-1")), NOW + 1)
    assert first.outcome == "rotated"
    second = await stores.refresh.rotate(h("f1-1"), refresh(h("f1-2")), NOW + 2)
    assert second.outcome == "rotated"
    reused = await stores.refresh.rotate(h("f1-0"), refresh(h("f1-x")), NOW + 3)
    assert reused.outcome == "reused"
    assert reused.family is not None
    assert reused.family.family_id == "f1"
    assert await stores.refresh.get(h("f1-x")) is None  # reuse created nothing
    assert await stores.refresh.revoke_family("f1", NOW + 3, "reuse")
    after = await stores.refresh.rotate(h("f1-2"), refresh(h("f1-3")), NOW + 4)
    assert after.outcome == "revoked"
    stored = await stores.refresh.get(h("f1-2"))
    assert stored is not None
    assert stored[1].revoked_reason == "reuse"
    unknown = await stores.refresh.rotate(h("nope"), refresh(h("n2")), NOW)
    assert unknown.outcome == "unknown"


async def test_a_rotation_says_what_it_did(stores: Stores) -> None:
    family = await new_family(stores, auth_time=NOW - 9, code_hash=h("code"))
    successor = refresh(h("f1-1"))
    result = await stores.refresh.rotate(h("f1-0"), successor, NOW + 1, b"sealed successor")
    assert (result.outcome, result.token, result.family) == ("rotated", successor, family)
    rotated = await stores.refresh.get(h("f1-0"))
    assert rotated is not None and rotated[1] == family
    assert rotated[0].rotated_at == NOW + 1
    assert rotated[0].successor_hash == h("f1-1")
    assert rotated[0].successor_sealed == b"sealed successor"
    assert await stores.refresh.get(h("f1-1")) == (successor, family)
    reused = await stores.refresh.rotate(h("f1-0"), refresh(h("f1-2")), NOW + 2)
    assert (reused.outcome, reused.token, reused.family) == ("reused", rotated[0], family)


async def test_expired_refresh_token_does_not_rotate(stores: Stores) -> None:
    family = RefreshFamily("f9", "c1", "u1", "openid", NOW)
    await stores.refresh.create_family(family, refresh(h("f9-0"), "f9", expires=NOW + 10))
    result = await stores.refresh.rotate(h("f9-0"), refresh(h("f9-1"), "f9"), NOW + 10)
    assert result.outcome == "expired"


async def test_revoked_comes_before_expired_and_expired_before_reused(stores: Stores) -> None:
    await new_family(stores, "fa")
    await stores.refresh.rotate(h("fa-0"), refresh(h("fa-1"), "fa", expires=NOW + 20), NOW + 1)
    late = NOW + 3600  # past both tokens' expiry
    assert (await stores.refresh.rotate(h("fa-0"), refresh(h("x"), "fa"), late)).outcome == (
        "expired"
    )
    assert await stores.refresh.revoke_family("fa", NOW + 2, "logout")
    assert not await stores.refresh.revoke_family("fa", NOW + 3, "again")
    for presented in (h("fa-0"), h("fa-1")):
        result = await stores.refresh.rotate(presented, refresh(h("y"), "fa"), late)
        assert result.outcome == "revoked" and result.family is not None
        assert (result.family.revoked_at, result.family.revoked_reason) == (NOW + 2, "logout")


async def test_twenty_concurrent_refreshes_never_fork(stores: Stores) -> None:
    await new_family(stores)
    results = await asyncio.gather(
        *(stores.refresh.rotate(h("f1-0"), refresh(h(f"succ-{i}")), NOW + 1) for i in range(20))
    )
    outcomes = sorted(result.outcome for result in results)
    assert outcomes.count("rotated") == 1
    assert outcomes.count("reused") == 19
    for result in results:  # every loser sees the row as the winner left it
        if result.outcome == "reused":
            assert result.token is not None
            assert result.token.rotated_at == NOW + 1
            assert result.token.successor_hash is not None
    live = [i for i in range(20) if await stores.refresh.get(h(f"succ-{i}")) is not None]
    assert len(live) == 1


async def test_a_successor_that_exists_rotates_nothing(stores: Stores) -> None:
    await new_family(stores, "fa")
    await new_family(stores, "fb")
    with pytest.raises(stores.duplicate):
        await stores.refresh.rotate(h("fa-0"), refresh(h("fb-0"), "fa"), NOW + 1)
    unrotated = await stores.refresh.get(h("fa-0"))
    assert unrotated is not None and unrotated[0].rotated_at is None
    assert (await stores.refresh.rotate(h("fa-0"), refresh(h("fa-1"), "fa"), NOW)).outcome == (
        "rotated"
    )
    with pytest.raises(stores.duplicate):
        await stores.refresh.create_family(
            RefreshFamily("fa", "c1", "u1", "x", NOW), refresh(h("new"), "fa")
        )


async def test_logout_revokes_every_family_of_a_subject(stores: Stores) -> None:
    await new_family(stores, "fa")
    await new_family(stores, "fb")
    assert await stores.refresh.revoke_for_subject("u1", NOW, "logout") == 2
    assert (
        await stores.refresh.rotate(h("fa-0"), refresh(h("fa-1"), "fa"), NOW)
    ).outcome == "revoked"


async def test_revocations_reach_only_the_families_not_yet_revoked(stores: Stores) -> None:
    await new_family(stores, "s1-a", session_id="s1", code_hash=h("code-a"))
    await new_family(stores, "s1-b", session_id="s1")
    await new_family(stores, "s1-c", session_id="s1")
    await new_family(stores, "s2-a", session_id="s2", code_hash=h("code-a"))
    await stores.refresh.revoke_family("s1-c", NOW, "reuse_detected")
    ended = await stores.refresh.revoke_for_session("s1", NOW + 1, "logout")
    assert sorted(ended) == ["s1-a", "s1-b"]
    assert await stores.refresh.revoke_for_session("s1", NOW + 2, "logout") == []
    assert await stores.refresh.revoke_by_code(h("code-a"), NOW + 3, "code_replayed") == 1
    assert await stores.refresh.revoke_for_client("c1", NOW + 4, "client_deleted") == 0
    reasons = {}
    for family_id in ("s1-a", "s1-b", "s1-c", "s2-a"):
        found = await stores.refresh.get(h(f"{family_id}-0"))
        assert found is not None
        reasons[family_id] = (found[1].revoked_at, found[1].revoked_reason)
    assert reasons == {
        "s1-a": (NOW + 1, "logout"),
        "s1-b": (NOW + 1, "logout"),
        "s1-c": (NOW, "reuse_detected"),
        "s2-a": (NOW + 3, "code_replayed"),
    }


async def test_a_client_and_a_subject_reach_their_own_families(stores: Stores) -> None:
    for family_id, client_id, subject in (("a", "c1", "u1"), ("b", "c2", "u1"), ("c", "c2", "u2")):
        family = RefreshFamily(family_id, client_id, subject, "api", NOW)
        await stores.refresh.create_family(family, refresh(h(family_id), family_id))
    assert await stores.refresh.revoke_for_client("c2", NOW, "client_deleted") == 2
    assert await stores.refresh.revoke_for_subject("u1", NOW, "logout") == 1  # b was revoked
    found = await stores.refresh.get(h("a"))
    assert found is not None and found[1].revoked_reason == "logout"
    assert not await stores.refresh.revoke_family("unknown", NOW, "x")


async def test_sealed_successors_are_forgotten_once_their_window_closes(stores: Stores) -> None:
    await new_family(stores)
    await stores.refresh.rotate(h("f1-0"), refresh(h("f1-1")), NOW, b"sealed-1")
    await stores.refresh.rotate(h("f1-1"), refresh(h("f1-2")), NOW + 10, b"sealed-2")
    await stores.refresh.rotate(h("f1-2"), refresh(h("f1-3")), NOW + 20)  # no grace: none kept
    assert await stores.refresh.forget_successors(NOW + 10) == 1  # rotated before NOW + 10
    assert await stores.refresh.forget_successors(NOW + 10) == 0
    sealed = []
    for i in range(4):
        found = await stores.refresh.get(h(f"f1-{i}"))
        assert found is not None
        sealed.append(found[0].successor_sealed)
    assert sealed == [None, b"sealed-2", None, None]
    assert await stores.refresh.forget_successors(NOW + 100) == 1


async def test_purge_ended_takes_whole_families_and_at_most_its_limit(stores: Stores) -> None:
    before, created_before = NOW + 100, NOW - 1000
    for i in range(3):  # every token expired before the cut
        family = RefreshFamily(f"idle-{i}", "c1", "u1", "api", NOW)
        await stores.refresh.create_family(family, refresh(h(f"idle-{i}"), f"idle-{i}", NOW + 99))
    old = RefreshFamily("old", "c1", "u1", "api", created_before - 1)  # past its lifetime
    await stores.refresh.create_family(old, refresh(h("old-0"), "old", NOW + 9999))
    young = RefreshFamily("young", "c1", "u1", "api", created_before)
    await stores.refresh.create_family(young, refresh(h("young-0"), "young", NOW + 50))
    await stores.refresh.rotate(h("young-0"), refresh(h("young-1"), "young", before), NOW + 1)
    assert await stores.refresh.purge_ended(before, created_before, limit=3) == 3
    assert await stores.refresh.purge_ended(before, created_before, limit=3) == 1
    assert await stores.refresh.purge_ended(before, created_before, limit=3) == 0
    for gone in ("idle-0", "idle-1", "idle-2", "old-0"):
        assert await stores.refresh.get(h(gone)) is None
    # One live token (expiring at the cut) keeps the family, its rotated token included.
    kept = await stores.refresh.get(h("young-0"))
    assert kept is not None and kept[0].rotated_at == NOW + 1
