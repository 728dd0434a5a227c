"""A bounded number of concurrent expensive calls, with a bounded queue in front of them.

Password hashing (Argon2id) costs tens of milliseconds of CPU and tens of MiB of memory per call.
Unbounded, a login flood queues every request on the thread pool and holds its memory until the
process falls over; bounded, ``limit`` hashes run at once, at most ``queue`` more wait, and any
beyond are refused at once (``Busy``) so the caller can answer 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["Busy", "Slots"]


class Busy(Exception):
    """Every slot is taken and the queue is full: try again shortly."""

    retry_after = 1


class Slots:
    def __init__(self, limit: int, queue: int) -> None:
        if limit < 1 or queue < 0:
            raise ValueError("a slot limit is at least 1 and a queue at least 0")
        self.limit = limit
        self.queue = queue
        self._semaphore = asyncio.Semaphore(limit)
        self._admitted = 0  # running plus waiting; only changed without an await in between

    @property
    def admitted(self) -> int:
        return self._admitted

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Run the block in a slot, after waiting in the queue if need be; Busy if it is full."""
        if self._admitted >= self.limit + self.queue:
            raise Busy
        self._admitted += 1
        try:
            async with self._semaphore:
                yield
        finally:
            self._admitted -= 1
