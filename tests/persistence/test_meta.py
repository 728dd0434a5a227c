"""The server-wide values' contract, on every backend: a value is set once."""

from __future__ import annotations

import asyncio

import pytest

from tests.persistence.conftest import Stores
from tests.support import BACKENDS

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


async def test_a_value_is_put_once(stores: Stores) -> None:
    assert await stores.meta.get("check") is None
    assert await stores.meta.put_if_absent("check", b"\x00sealed")
    assert not await stores.meta.put_if_absent("check", b"another")
    assert await stores.meta.get("check") == b"\x00sealed"


async def test_of_concurrent_first_starts_one_writes(stores: Stores) -> None:
    answers = await asyncio.gather(
        *(stores.meta.put_if_absent("check", bytes([i])) for i in range(5))
    )
    assert answers.count(True) == 1
    assert await stores.meta.get("check") == bytes([answers.index(True)])
