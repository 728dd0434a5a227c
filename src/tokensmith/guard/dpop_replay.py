"""Remembering DPoP proofs a resource server has accepted, so none is accepted twice.

RFC 9449 §11.1: a proof is single use within its lifetime. ``ProofReplayCache`` is what the guard
asks; ``MemoryProofCache`` answers for one process. Behind several processes or nodes a replayed
proof could land on another one: an app that runs more than one plugs in a shared cache of its
own (Redis ``SET NX EX``, say) implementing the same one method.
"""

from __future__ import annotations

import threading
from typing import Protocol

__all__ = ["MemoryProofCache", "ProofCacheFull", "ProofReplayCache"]


class ProofCacheFull(Exception):
    """The cache cannot remember another proof; the guard refuses rather than forgets."""


class ProofReplayCache(Protocol):
    def first_use(self, key: str, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at``; False if it is already recorded and live.

        Called by async and threaded adapters alike, so it must be quick and thread-safe."""
        ...


class MemoryProofCache:
    """At most ``max_entries`` live proofs; when full of live ones, ``ProofCacheFull`` (fail
    closed: evicting a live proof would let it be replayed)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def first_use(self, key: str, expires_at: int, now: int) -> bool:
        with self._lock:
            known = self._seen.get(key)
            if known is not None and known > now:
                return False
            if len(self._seen) >= self.max_entries:
                self._purge(now)
                if len(self._seen) >= self.max_entries:
                    raise ProofCacheFull("too many live DPoP proofs to remember")
            self._seen[key] = expires_at
            return True

    def _purge(self, now: int) -> None:
        self._seen = {key: end for key, end in self._seen.items() if end > now}

    def __len__(self) -> int:
        return len(self._seen)
