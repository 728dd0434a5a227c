"""Users (implements ``tokensmith.accounts.users.UserStore``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tokensmith.accounts.users import User
from tokensmith.persistence.repositories._base import Repository, as_dict, select_by, values_of
from tokensmith.persistence.tables import users as t

__all__ = ["SqlUserStore"]


_USER_BY_ID = select_by(t, "user_id")
_USER_BY_NAME = select_by(t, "username")


def _record(row: sa.Row[Any]) -> User:
    return User(**as_dict(row))


class SqlUserStore(Repository):
    async def add(self, user: User) -> None:
        async with self.db.begin() as conn:
            await conn.execute(sa.insert(t), values_of(t, user))

    async def get(self, user_id: str) -> User | None:
        return await self._one(_USER_BY_ID, {"user_id": user_id})

    async def get_by_username(self, username: str) -> User | None:
        return await self._one(_USER_BY_NAME, {"username": username})

    async def list(self) -> list[User]:
        async with self.db.connect() as conn:
            rows = await conn.execute(sa.select(t).order_by(t.c.username))
            return [_record(row) for row in rows]

    async def set_password(self, user_id: str, password_hash: str, now: int) -> bool:
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(t)
                .where(t.c.user_id == user_id)
                .values(password_hash=password_hash, password_changed_at=now)
            )
        return result.rowcount == 1

    async def _one(self, query: sa.Select[Any], values: dict[str, Any]) -> User | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(query, values)).first()
        return _record(row) if row else None
