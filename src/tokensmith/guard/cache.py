"""A bounded map whose entries expire; the memory of every validator in the guard.

Full means the oldest insertion goes first: an OrderedDict pops its front in O(1), where a plain
dict would rescan the deleted slots at its front on every eviction. Reads and writes are single
C-level operations, safe under the GIL for the threads of a WSGI server.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["ExpiringCache"]

K = TypeVar("K")
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("a cache holds at least one entry")
        self.max_entries = max_entries
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def get(self, key: K, now: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            self._entries.pop(key, None)
            return None
        return entry[0]

    def put(self, key: K, value: V, until: float) -> None:
        entries = self._entries
        while len(entries) >= self.max_entries:
            try:
                entries.popitem(last=False)
            except KeyError:  # emptied by another thread
                break
        entries[key] = (value, until)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
