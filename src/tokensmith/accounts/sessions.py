"""Login sessions: what the session cookie refers to, bound to the time of login (``auth_time``).

The cookie carries a random 256-bit id; the database keeps only its keyed hash. Every login
creates a new id (the old one, if any, is ended), so a session id planted before login is useless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Session", "SessionStore"]


@dataclass(frozen=True, slots=True)
class Session:
    session_hash: bytes
    user_id: str
    auth_time: int
    amr: str
    created_at: int
    expires_at: int
    ended_at: int | None = None

    @property
    def session_ref(self) -> str:
        """A stable, non-secret name for the session, stored with its codes and tokens."""
        return self.session_hash.hex()[:32]

    def live(self, now: int) -> bool:
        return self.ended_at is None and self.expires_at > now


class SessionStore(Protocol):
    async def add(self, session: Session) -> None: ...

    async def get(self, session_hash: bytes) -> Session | None: ...

    async def end(self, session_hash: bytes, now: int) -> bool: ...

    async def purge_ended(self, before: int, limit: int = ...) -> int:
        """Delete at most ``limit`` sessions that ended or expired before ``before``."""
        ...
