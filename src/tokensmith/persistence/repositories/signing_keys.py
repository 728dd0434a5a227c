"""Signing keys (implements ``tokensmith.jose.keyring.SigningKeyStore``)."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa

from tokensmith.jose.keyring import KeyRecord, KeyState
from tokensmith.persistence.repositories._base import Repository, as_dict
from tokensmith.persistence.tables import signing_keys as t

__all__ = ["SqlSigningKeyStore"]


def _record(row: sa.Row[Any]) -> KeyRecord:
    data = as_dict(row)
    sealed = data.pop("private_sealed")
    data["private_sealed"] = bytes(sealed) if sealed is not None else None
    data["state"] = cast(KeyState, data["state"])
    return KeyRecord(**data)


class SqlSigningKeyStore(Repository):
    async def list_keys(self, states: tuple[KeyState, ...]) -> list[KeyRecord]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                sa.select(t).where(t.c.state.in_(states)).order_by(t.c.created_at.desc())
            )
            return [_record(row) for row in rows]

    async def add_key(self, record: KeyRecord) -> bool:
        values = {
            "kid": record.kid,
            "alg": record.alg,
            "state": record.state,
            "public_jwk": record.public_jwk,
            "private_sealed": record.private_sealed,
            "created_at": record.created_at,
            "activated_at": record.activated_at,
            "retiring_at": record.retiring_at,
            "publish_until": record.publish_until,
        }
        return await self.insert_new(t, values)

    async def delete_key(self, kid: str, state: KeyState) -> bool:
        async with self.db.begin() as conn:
            result = await conn.execute(sa.delete(t).where(t.c.kid == kid, t.c.state == state))
        return result.rowcount == 1

    async def promote(self, next_kid: str, active_kid: str | None, now: int, until: int) -> bool:
        async with self.db.begin() as conn:
            if active_kid is not None:
                demoted = await conn.execute(
                    sa.update(t)
                    .where(t.c.kid == active_kid, t.c.state == "active")
                    .values(state="retiring", retiring_at=now, publish_until=until)
                )
                if demoted.rowcount != 1:
                    await conn.rollback()
                    return False
            promoted = await conn.execute(
                sa.update(t)
                .where(t.c.kid == next_kid, t.c.state == "next")
                .values(state="active", activated_at=now)
            )
            if promoted.rowcount != 1:
                await conn.rollback()
                return False
        return True

    async def retire_expired(self, now: int) -> list[str]:
        async with self.db.begin() as conn:
            rows = await conn.execute(
                sa.select(t.c.kid).where(t.c.state == "retiring", t.c.publish_until <= now)
            )
            kids = [row.kid for row in rows]
            if kids:
                # The private half of a retired key is destroyed: nothing may sign with it again.
                await conn.execute(
                    sa.update(t)
                    .where(t.c.kid.in_(kids), t.c.state == "retiring")
                    .values(state="retired", private_sealed=None)
                )
        return kids
