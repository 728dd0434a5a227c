"""Users in memory (implements ``UserStore``), as ``SqlUserStore``: ids and usernames unique."""

from __future__ import annotations

from dataclasses import replace

from tokensmith.accounts.users import User
from tokensmith.persistence.memory._tables import DuplicateKey, Tables, round_trip

__all__ = ["MemoryUserStore"]


class MemoryUserStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._rows = (tables or Tables()).users

    async def add(self, user: User) -> None:
        await round_trip()
        if user.user_id in self._rows:
            raise DuplicateKey(f"user {user.user_id!r} exists")
        if any(u.username == user.username for u in self._rows.values()):
            raise DuplicateKey(f"username {user.username!r} is taken")
        self._rows[user.user_id] = user

    async def get(self, user_id: str) -> User | None:
        await round_trip()
        return self._rows.get(user_id)

    async def get_by_username(self, username: str) -> User | None:
        """The exact name: no case folding, as the SQL column compares."""
        await round_trip()
        return next((u for u in self._rows.values() if u.username == username), None)

    async def list(self) -> list[User]:
        """By username, in code-point order (SQLite's; PostgreSQL's follows its collation)."""
        await round_trip()
        return sorted(self._rows.values(), key=lambda u: u.username)

    async def set_password(self, user_id: str, password_hash: str, now: int) -> bool:
        await round_trip()
        user = self._rows.get(user_id)
        if user is None:
            return False
        self._rows[user_id] = replace(user, password_hash=password_hash, password_changed_at=now)
        return True
