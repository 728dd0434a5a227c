"""The audit trail (implements ``tokensmith.audit.events.AuditStore``): append-only, batched."""

from __future__ import annotations

import dataclasses
import json
import operator
from typing import Any

import sqlalchemy as sa

from tokensmith.audit.events import AuditEvent, AuditQuery
from tokensmith.persistence.repositories._base import PURGE_BATCH, Repository, as_dict
from tokensmith.persistence.tables import audit_events as t

__all__ = ["SqlAuditStore"]

MAX_QUERY_LIMIT = 10_000
# One encoder for every row: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(default=str, separators=(",", ":")).encode
# The columns an append fills: AuditEvent's, detail (JSON) last; event_id is the database's.
_PLAIN_COLUMNS = tuple(
    f.name for f in dataclasses.fields(AuditEvent) if f.name not in ("event_id", "detail")
)
_COLUMNS = (*_PLAIN_COLUMNS, "detail")
_plain_values = operator.attrgetter(*_PLAIN_COLUMNS)


class SqlAuditStore(Repository):
    async def append(self, events: list[AuditEvent]) -> None:
        if not events:
            return
        rows = [(*_plain_values(e), _encode(e.detail)) for e in events]
        async with self.db.single() as conn:  # one statement, for every row (atomic)
            await conn.insert_many(t, _COLUMNS, rows)

    async def query(self, query: AuditQuery) -> list[AuditEvent]:
        statement = sa.select(t).order_by(t.c.at.desc(), t.c.event_id.desc())
        filters: list[sa.ColumnElement[bool]] = []
        if query.since is not None:
            filters.append(t.c.at >= query.since)
        if query.client_id is not None:
            filters.append(t.c.client_id == query.client_id)
        if query.subject is not None:
            filters.append(t.c.subject == query.subject)
        if query.event is not None:
            filters.append(t.c.event == query.event)
        statement = statement.where(*filters).limit(max(1, min(query.limit, MAX_QUERY_LIMIT)))
        async with self.db.connect() as conn:
            return [_event(row) for row in await conn.execute(statement)]

    async def purge(self, before: int, limit: int = PURGE_BATCH) -> int:
        """Events older than ``before``, at most ``limit`` of them (the oldest first)."""
        chosen = sa.select(t.c.event_id).where(t.c.at < before).order_by(t.c.at).limit(limit)
        async with self.db.begin() as conn:
            result = await conn.execute(sa.delete(t).where(t.c.event_id.in_(chosen)))
        return result.rowcount


def _event(row: sa.Row[Any]) -> AuditEvent:
    return AuditEvent(**as_dict(row))
