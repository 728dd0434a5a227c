"""Login sessions in memory (implements ``SessionStore``), as ``SqlSessionStore``."""

from __future__ import annotations

from dataclasses import replace

from tokensmith.accounts.sessions import Session
from tokensmith.persistence.memory._tables import PURGE_BATCH, DuplicateKey, Tables, round_trip

__all__ = ["MemorySessionStore"]


class MemorySessionStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._rows = (tables or Tables()).sessions

    async def add(self, session: Session) -> None:
        await round_trip()
        if session.session_hash in self._rows:
            raise DuplicateKey("the session exists")
        self._rows[session.session_hash] = session

    async def get(self, session_hash: bytes) -> Session | None:
        await round_trip()
        return self._rows.get(session_hash)

    async def end(self, session_hash: bytes, now: int) -> bool:
        await round_trip()
        session = self._rows.get(session_hash)
        if session is None or session.ended_at is not None:
            return False
        self._rows[session_hash] = replace(session, ended_at=now)
        return True

    async def end_for_user(self, user_id: str, now: int) -> int:
        """End every open session of a user (they sign in again); how many were open."""
        await round_trip()
        open_ = [s for s in self._rows.values() if s.user_id == user_id and s.ended_at is None]
        for session in open_:
            self._rows[session.session_hash] = replace(session, ended_at=now)
        return len(open_)

    async def purge_ended(self, before: int, limit: int = PURGE_BATCH) -> int:
        """Sessions that expired or were ended before ``before``, at most ``limit`` of them."""
        await round_trip()
        ended = [
            key
            for key, s in self._rows.items()
            if s.expires_at < before or (s.ended_at is not None and s.ended_at < before)
        ][:limit]
        for key in ended:
            del self._rows[key]
        return len(ended)
