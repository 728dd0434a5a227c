"""The client-assertion replay store's contract, on every backend: a jti once per client."""

from __future__ import annotations

import asyncio

import pytest

from tests.persistence.conftest import NOW, Stores
from tests.support import BACKENDS

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


async def test_a_jti_is_used_once_by_each_client(stores: Stores) -> None:
    assert await stores.assertions.remember("c1", "jti-0001", NOW + 60)
    assert not await stores.assertions.remember("c1", "jti-0001", NOW + 120)
    assert await stores.assertions.remember("c2", "jti-0001", NOW + 60)  # another client's


async def test_of_ten_concurrent_presentations_one_is_remembered(stores: Stores) -> None:
    answers = await asyncio.gather(
        *(stores.assertions.remember("c1", "jti-race", NOW + 60) for _ in range(10))
    )
    assert answers.count(True) == 1


async def test_expired_ids_are_purged_in_batches(stores: Stores) -> None:
    for i in range(3):
        await stores.assertions.remember("c1", f"old-{i:04}", NOW - 1)
    await stores.assertions.remember("c1", "at-the-cut", NOW)
    assert await stores.assertions.purge_expired(NOW, limit=2) == 2
    assert await stores.assertions.purge_expired(NOW, limit=2) == 1
    assert await stores.assertions.purge_expired(NOW) == 0
    assert await stores.assertions.remember("c1", "old-0000", NOW + 60)  # forgotten: usable
    assert not await stores.assertions.remember("c1", "at-the-cut", NOW + 60)  # still held
