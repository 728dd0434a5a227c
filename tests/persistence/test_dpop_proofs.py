"""The DPoP proof replay store's contract, on every backend: a proof once (RFC 9449 §11.1)."""

from __future__ import annotations

import asyncio

import pytest

from tests.persistence.conftest import NOW, Stores
from tests.support import BACKENDS
from tokensmith.oauth.dpop import proof_hash

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


async def test_a_proof_is_remembered_once(stores: Stores) -> None:
    seen = proof_hash("jkt-a", "jti-1")
    assert await stores.dpop_proofs.remember(seen, NOW + 60)
    assert not await stores.dpop_proofs.remember(seen, NOW + 120)
    # The same jti under another key is another proof.
    assert await stores.dpop_proofs.remember(proof_hash("jkt-b", "jti-1"), NOW + 60)


async def test_of_ten_concurrent_presentations_one_is_remembered(stores: Stores) -> None:
    seen = proof_hash("jkt", "race")
    answers = await asyncio.gather(
        *(stores.dpop_proofs.remember(seen, NOW + 60) for _ in range(10))
    )
    assert answers.count(True) == 1


async def test_expired_proofs_are_purged_in_batches(stores: Stores) -> None:
    for i in range(3):
        await stores.dpop_proofs.remember(proof_hash("k", f"old-{i}"), NOW - 1)
    await stores.dpop_proofs.remember(proof_hash("k", "live"), NOW + 60)
    assert await stores.dpop_proofs.purge_expired(NOW, limit=2) == 2
    assert await stores.dpop_proofs.purge_expired(NOW, limit=2) == 1
    assert await stores.dpop_proofs.purge_expired(NOW) == 0
    assert not await stores.dpop_proofs.remember(proof_hash("k", "live"), NOW + 60)
