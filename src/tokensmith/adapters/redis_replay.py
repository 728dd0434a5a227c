"""DPoP proofs seen, in Redis (implements ``ProofReplayStore``) when ``TOKENSMITH_REDIS_URL`` is
set: one ``SET NX EXAT`` per proof, so every node shares the record and Redis forgets it when the
proof could no longer be accepted anyway (RFC 9449 §11.1).

Unlike rate limits, a replay record has no per-node fallback: a node that cannot reach Redis
cannot know whether another node saw the proof, so it refuses (503 ``temporarily_unavailable``,
fail closed), after at most the timeout (``redis_client.open_redis``: no retries). A record whose
reply was lost may have been written: that proof is refused all the same, and a retry with a
fresh proof (a new ``jti``, RFC 9449 §4.2) is a record of its own.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from tokensmith.adapters.redis_client import (
    REDIS_ERRORS,
    forget_connections,
    open_redis,
    unavailable,
)
from tokensmith.errors import TemporarilyUnavailable

__all__ = ["RedisProofStore"]

log = logging.getLogger(__name__)


class RedisProofStore:
    def __init__(self, redis_url: str, *, prefix: str = "tokensmith:", timeout: float = 0.25):
        self._redis: aioredis.Redis = open_redis(redis_url, timeout)
        self._prefix = prefix
        self._away = False  # logged once per outage, not once per refused proof

    async def remember(self, proof_hash: bytes, expires_at: int) -> bool:
        key = f"{self._prefix}dpop:{proof_hash.hex()}"
        try:
            stored = await self._redis.set(key, b"1", nx=True, exat=expires_at)
        except REDIS_ERRORS as exc:
            if not unavailable(exc):
                raise  # a fault of ours: a 500 that says so, not an outage
            forget_connections(self._redis)
            if not self._away:
                self._away = True
                error = type(exc).__name__
                log.warning("Redis unreachable: DPoP proofs refused", extra={"error": error})
            raise TemporarilyUnavailable("the DPoP replay record is unavailable") from None
        if self._away:
            self._away = False
            log.warning("Redis reachable again: DPoP proofs accepted")
        return bool(stored)

    async def purge_expired(self, before: int, limit: int = 0) -> int:
        return 0  # Redis expires each record itself

    async def close(self) -> None:
        await self._redis.aclose()
