"""Pushed authorization requests as stored (RFC 9126 §2.2, §4): what a client pushed, by the
keyed hash of the ``request_uri`` it was given, never the URI itself.

A record is used once: ``consume`` marks it with a conditional write (``used_at`` still unset,
not yet expired, pushed by this client), so of any number of concurrent uses, on any node,
exactly one gets the parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["PushedRequest", "PushedRequestStore"]


@dataclass(frozen=True, slots=True)
class PushedRequest:
    request_hash: bytes
    client_id: str
    # The authorization parameters only (never a credential): a name to its value, or to the
    # list of values of a repeatable parameter (``resource``).
    params: dict[str, Any]
    created_at: int
    expires_at: int
    used_at: int | None = None


class PushedRequestStore(Protocol):
    async def add(self, pushed: PushedRequest) -> None: ...

    async def consume(self, request_hash: bytes, client_id: str, now: int) -> PushedRequest | None:
        """Mark the request used and return it, once, to the client that pushed it, before it
        expires; None (and nothing changed) for an unknown, used, expired or other client's one."""
        ...

    async def purge_expired(self, before: int, limit: int = ...) -> int:
        """Delete at most ``limit`` requests that expired before ``before``; how many went."""
        ...
