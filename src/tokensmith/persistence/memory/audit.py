"""The audit trail in memory (implements ``AuditStore``), as ``SqlAuditStore``: append-only.

Each event gets the next ``event_id``; ``detail`` is kept as JSON gives it back (``str`` for what
JSON cannot hold, as the SQL store encodes it). Queries are newest first, ties by id.
"""

from __future__ import annotations

import json
from dataclasses import replace

from tokensmith.audit.events import AuditEvent, AuditQuery
from tokensmith.persistence.memory._tables import PURGE_BATCH, Tables, fresh, round_trip

__all__ = ["MemoryAuditStore"]

MAX_QUERY_LIMIT = 10_000  # as SqlAuditStore
_encode = json.JSONEncoder(default=str, separators=(",", ":")).encode


class MemoryAuditStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._tables = tables or Tables()
        self._rows = self._tables.audit_events

    async def append(self, events: list[AuditEvent]) -> None:
        await round_trip()
        for event in events:
            self._tables.last_event_id += 1
            event_id = self._tables.last_event_id
            detail = json.loads(_encode(event.detail))
            self._rows[event_id] = replace(event, detail=detail, event_id=event_id)

    async def query(self, query: AuditQuery) -> list[AuditEvent]:
        await round_trip()
        chosen = [
            e
            for e in self._rows.values()
            if (query.since is None or e.at >= query.since)
            and (query.client_id is None or e.client_id == query.client_id)
            and (query.subject is None or e.subject == query.subject)
            and (query.event is None or e.event == query.event)
        ]
        chosen.sort(key=lambda e: (e.at, e.event_id or 0), reverse=True)
        limit = max(1, min(query.limit, MAX_QUERY_LIMIT))
        return [replace(e, detail=fresh(e.detail)) for e in chosen[:limit]]

    async def purge(self, before: int, limit: int = PURGE_BATCH) -> int:
        """Events older than ``before``, at most ``limit`` of them (the oldest first)."""
        await round_trip()
        old = sorted((e for e in self._rows.values() if e.at < before), key=lambda e: e.at)
        for event in old[:limit]:
            assert event.event_id is not None
            del self._rows[event.event_id]
        return len(old[:limit])
