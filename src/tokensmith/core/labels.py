"""Labelled metric children, looked up once per label set.

prometheus-client's ``labels()`` validates its arguments and takes a lock on every call; on the
request path the same few label sets repeat, so each child is kept after its first lookup. The
table is bounded: label values come from route templates, methods, status codes and reasons,
but a bound keeps a surprise from growing it without end.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["LabelledChildren"]


class _Labelled(Protocol):
    def labels(self, *values: str) -> Any: ...


class LabelledChildren:
    def __init__(self, metric: _Labelled, max_entries: int = 1024) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}
        self._max_entries = max_entries

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            if len(self._children) >= self._max_entries:
                self._children.clear()
            child = self._children[values] = self._metric.labels(*values)
        return child
