"""The API-key store's contract, on every backend."""

from __future__ import annotations

import pytest

from tests.persistence.conftest import NOW, Stores, h
from tests.support import BACKENDS
from tokensmith.apikeys.records import ApiKeyRecord

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


async def test_api_keys(stores: Stores) -> None:
    record = ApiKeyRecord(
        "k1",
        "ci",
        "team-a",
        h("secret"),
        "deploy",
        NOW,
        expires_at=NOW + 86400,
        allowed_cidrs=("10.0.0.0/8",),
        rate_limit=100,
    )
    await stores.api_keys.add(record)
    assert await stores.api_keys.get("k1") == record
    await stores.api_keys.add(ApiKeyRecord("k2", "other", "team-b", h("s2"), "", NOW + 1))
    assert [r.key_id for r in await stores.api_keys.list("team-a")] == ["k1"]
    assert len(await stores.api_keys.list()) == 2
    # Rotation shortens the old key's life to the grace period, never lengthens it.
    assert await stores.api_keys.set_expiry("k1", NOW + 600, "k3")
    assert await stores.api_keys.set_expiry("k1", NOW + 99999, "k3")
    rotated = await stores.api_keys.get("k1")
    assert rotated is not None
    assert rotated.expires_at == NOW + 600
    assert rotated.replaced_by == "k3"
    await stores.api_keys.touch({"k1": NOW + 5, "k2": NOW + 6})
    touched = await stores.api_keys.get("k2")
    assert touched is not None
    assert touched.last_used_at == NOW + 6
    assert await stores.api_keys.revoke("k1", NOW + 7)
    assert not await stores.api_keys.revoke("k1", NOW + 8)


async def test_a_key_id_is_taken_once(stores: Stores) -> None:
    first = ApiKeyRecord("k1", "ci", "team-a", h("s1"), "deploy", NOW, audiences=("https://a",))
    assert await stores.api_keys.add(first)
    assert not await stores.api_keys.add(ApiKeyRecord("k1", "other", "team-b", h("s2"), "", NOW))
    assert await stores.api_keys.get("k1") == first
    assert await stores.api_keys.get("unknown") is None


async def test_keys_are_listed_oldest_first_then_by_id(stores: Stores) -> None:
    for key_id, owner, at in (("kc", "a", NOW), ("ka", "a", NOW + 1), ("kb", "b", NOW)):
        await stores.api_keys.add(ApiKeyRecord(key_id, key_id, owner, h(key_id), "", at))
    assert [r.key_id for r in await stores.api_keys.list()] == ["kb", "kc", "ka"]
    assert [r.key_id for r in await stores.api_keys.list("a")] == ["kc", "ka"]
    assert await stores.api_keys.list("nobody") == []


async def test_an_expiry_is_set_on_a_key_without_one_and_names_the_successor(
    stores: Stores,
) -> None:
    await stores.api_keys.add(ApiKeyRecord("k1", "ci", "team-a", h("s1"), "", NOW))
    assert await stores.api_keys.set_expiry("k1", NOW + 60, "k2")
    assert await stores.api_keys.set_expiry("k1", NOW + 30, None)  # shorter: taken
    stored = await stores.api_keys.get("k1")
    assert stored is not None and (stored.expires_at, stored.replaced_by) == (NOW + 30, None)
    assert not await stores.api_keys.set_expiry("unknown", NOW, None)


async def test_touch_passes_over_unknown_ids_and_an_empty_batch(stores: Stores) -> None:
    await stores.api_keys.add(ApiKeyRecord("k1", "ci", "team-a", h("s1"), "", NOW))
    await stores.api_keys.touch({})
    await stores.api_keys.touch({"unknown": NOW, "k1": NOW + 1})
    await stores.api_keys.touch({"k1": NOW + 2})
    stored = await stores.api_keys.get("k1")
    assert stored is not None and stored.last_used_at == NOW + 2
    assert await stores.api_keys.get("unknown") is None
