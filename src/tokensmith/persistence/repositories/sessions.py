"""Login sessions (implements ``tokensmith.accounts.sessions.SessionStore``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tokensmith.accounts.sessions import Session
from tokensmith.persistence.repositories._base import (
    PURGE_BATCH,
    Repository,
    as_dict,
    batch_delete,
    select_by,
    values_of,
)
from tokensmith.persistence.tables import sessions as t

__all__ = ["SqlSessionStore"]


_SESSION_BY_HASH = select_by(t, "session_hash")


def _record(row: sa.Row[Any]) -> Session:
    data = as_dict(row)
    data["session_hash"] = bytes(data["session_hash"])
    return Session(**data)


class SqlSessionStore(Repository):
    async def add(self, session: Session) -> None:
        async with self.db.begin() as conn:
            await conn.execute(sa.insert(t), values_of(t, session))

    async def get(self, session_hash: bytes) -> Session | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(_SESSION_BY_HASH, {"session_hash": session_hash})).first()
        return _record(row) if row else None

    async def end(self, session_hash: bytes, now: int) -> bool:
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(t)
                .where(t.c.session_hash == session_hash, t.c.ended_at.is_(None))
                .values(ended_at=now)
            )
        return result.rowcount == 1

    async def end_for_user(self, user_id: str, now: int) -> int:
        """End every open session of a user (they sign in again); how many were open."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(t)
                .where(t.c.user_id == user_id, t.c.ended_at.is_(None))
                .values(ended_at=now)
            )
        return result.rowcount

    async def purge_ended(self, before: int, limit: int = PURGE_BATCH) -> int:
        """Sessions that expired or were ended before ``before``."""
        ended = sa.or_(t.c.expires_at < before, t.c.ended_at < before)
        async with self.db.begin() as conn:
            result = await conn.execute(batch_delete(t, t.c.session_hash, ended, limit))
        return result.rowcount
