"""The DPoP replay record in Redis (adapters/redis_replay.py): shared by nodes, expiring by
itself, and failing closed when Redis cannot be reached."""

from __future__ import annotations

import time

import pytest
import redis

from tests.support import REDIS_URL, SLOW_MACHINE, refused_port
from tokensmith.adapters.redis_replay import RedisProofStore
from tokensmith.errors import TemporarilyUnavailable
from tokensmith.oauth.dpop import proof_hash

pytestmark = pytest.mark.anyio


async def test_two_nodes_share_the_record(redis_prefix: str) -> None:
    first = RedisProofStore(REDIS_URL, prefix=redis_prefix, timeout=SLOW_MACHINE)
    second = RedisProofStore(REDIS_URL, prefix=redis_prefix, timeout=SLOW_MACHINE)
    try:
        expires = int(time.time()) + 60
        seen = proof_hash("jkt", "jti-1")
        assert await first.remember(seen, expires)
        assert not await second.remember(seen, expires)
        assert not await first.remember(seen, expires)
        assert await second.remember(proof_hash("jkt", "jti-2"), expires)
        assert await first.purge_expired(int(time.time())) == 0  # Redis expires them itself
    finally:
        await first.close()
        await second.close()


async def test_a_record_expires_when_the_proof_would(redis_prefix: str) -> None:
    store = RedisProofStore(REDIS_URL, prefix=redis_prefix, timeout=SLOW_MACHINE)
    try:
        expires = int(time.time()) + 60
        assert await store.remember(proof_hash("jkt", "ttl"), expires)
    finally:
        await store.close()
    keys = redis.Redis.from_url(REDIS_URL).keys(f"{redis_prefix}dpop:*")
    assert len(keys) == 1
    ttl = redis.Redis.from_url(REDIS_URL).ttl(keys[0])
    assert 0 < ttl <= 60


async def test_unreachable_redis_refuses_the_proof() -> None:
    store = RedisProofStore(f"redis://127.0.0.1:{refused_port()}", timeout=SLOW_MACHINE)
    try:
        with pytest.raises(TemporarilyUnavailable):
            await store.remember(proof_hash("jkt", "jti"), int(time.time()) + 60)
    finally:
        await store.close()
