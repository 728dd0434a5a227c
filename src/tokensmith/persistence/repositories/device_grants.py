"""Device authorizations (implements ``oauth.device_grants.DeviceGrantStore``).

Every change is one conditional ``UPDATE ... RETURNING``: of concurrent polls, decisions or
redemptions, the database lets exactly one match its condition.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tokensmith.oauth.device_grants import (
    MAX_POLL_INTERVAL,
    SLOW_DOWN_STEP,
    DeviceDecision,
    DeviceGrant,
    Poll,
)
from tokensmith.oauth.transactions import Transaction
from tokensmith.persistence.repositories._base import (
    PURGE_BATCH,
    Repository,
    as_dict,
    batch_delete,
    select_by,
    values_of,
)
from tokensmith.persistence.tables import device_grants as grants
from tokensmith.persistence.tables import users

__all__ = ["SqlDeviceGrantStore"]

_BY_DEVICE_CODE = select_by(grants, "device_code_hash")
_BY_USER_CODE = select_by(grants, "user_code_hash")
_OWN = (
    grants.c.device_code_hash == sa.bindparam("match_hash"),
    grants.c.client_id == sa.bindparam("match_client"),
)
# A poll on time: the interval has passed since the last one (or there was none).
_POLL_ON_TIME = (
    sa.update(grants)
    .where(
        *_OWN,
        sa.or_(
            grants.c.last_polled_at.is_(None),
            grants.c.last_polled_at + grants.c.poll_interval <= sa.bindparam("now"),
        ),
    )
    .values(last_polled_at=sa.bindparam("now"))
    .returning(*grants.c)
)
# Otherwise too fast: the interval grows, for every later poll (RFC 8628 §3.5), up to the cap
# (``next_interval``; the configured interval is never above it).
_POLL_TOO_FAST = (
    sa.update(grants)
    .where(*_OWN)
    .values(
        last_polled_at=sa.bindparam("now"),
        poll_interval=sa.case(
            (grants.c.poll_interval + SLOW_DOWN_STEP > MAX_POLL_INTERVAL, MAX_POLL_INTERVAL),
            else_=grants.c.poll_interval + SLOW_DOWN_STEP,
        ),
    )
    .returning(*grants.c)
)
_DECIDE = (
    sa.update(grants)
    .where(
        grants.c.device_code_hash == sa.bindparam("match_hash"),
        grants.c.status == "pending",
        grants.c.expires_at > sa.bindparam("now"),
    )
    .values(
        status=sa.bindparam("decision"),
        user_id=sa.bindparam("user_id"),
        auth_time=sa.bindparam("auth_time"),
        session_id=sa.bindparam("session_id"),
        decided_at=sa.bindparam("now"),
    )
    .returning(*grants.c)
)
_REDEEM = (
    sa.update(grants)
    .where(*_OWN, grants.c.status == "approved", grants.c.expires_at > sa.bindparam("now"))
    .values(status="redeemed")
    .returning(*grants.c)
)

_MARK_REPLAYED = (
    sa.update(grants)
    .where(*_OWN, grants.c.status == "redeemed")
    .values(status="replayed")
    .returning(grants.c.device_code_hash)
)
# Checked last in the token transaction: FOR SHARE holds the row on PostgreSQL, so a replay's
# mark waits for the commit; on SQLite the transaction's writes already hold the database.
_ISSUABLE = (
    sa.select(grants.c.device_code_hash)
    .where(
        grants.c.device_code_hash == sa.bindparam("device_code_hash"),
        grants.c.status == "redeemed",
        sa.exists().where(users.c.user_id == grants.c.user_id, sa.not_(users.c.disabled)),
    )
    .with_for_update(read=True, of=grants)
)


def _grant(row: sa.Row[Any]) -> DeviceGrant:
    data = as_dict(row)
    data["device_code_hash"] = bytes(data["device_code_hash"])
    data["user_code_hash"] = bytes(data["user_code_hash"])
    return DeviceGrant(**data)


class SqlDeviceGrantStore(Repository):
    async def add(self, grant: DeviceGrant) -> bool:
        return await self.insert_new(grants, values_of(grants, grant))

    async def get(self, device_code_hash: bytes) -> DeviceGrant | None:
        return await self._one(_BY_DEVICE_CODE, {"device_code_hash": device_code_hash})

    async def find_by_user_code(self, user_code_hash: bytes) -> DeviceGrant | None:
        return await self._one(_BY_USER_CODE, {"user_code_hash": user_code_hash})

    async def poll(self, device_code_hash: bytes, client_id: str, now: int) -> Poll | None:
        values = {"match_hash": device_code_hash, "match_client": client_id, "now": now}
        on_time = await self._change(_POLL_ON_TIME, values)
        if on_time is not None:
            return Poll(on_time, too_fast=False)
        too_fast = await self._change(_POLL_TOO_FAST, values)
        return Poll(too_fast, too_fast=True) if too_fast is not None else None

    async def decide(
        self, device_code_hash: bytes, decision: DeviceDecision, now: int
    ) -> DeviceGrant | None:
        return await self._change(
            _DECIDE,
            {
                "match_hash": device_code_hash,
                "decision": decision.status,
                "user_id": decision.user_id,
                "auth_time": decision.auth_time,
                "session_id": decision.session_id,
                "now": now,
            },
        )

    async def redeem(self, device_code_hash: bytes, client_id: str, now: int) -> DeviceGrant | None:
        values = {"match_hash": device_code_hash, "match_client": client_id, "now": now}
        return await self._change(_REDEEM, values)

    async def guard_issue(self, device_code_hash: bytes, tx: Transaction) -> None:
        self.joined(tx).guard(_ISSUABLE, {"device_code_hash": device_code_hash})

    async def mark_replayed(self, device_code_hash: bytes, client_id: str) -> bool:
        async with self.db.single() as conn:
            result = await conn.execute(
                _MARK_REPLAYED, {"match_hash": device_code_hash, "match_client": client_id}
            )
            return result.first() is not None

    async def delete_for_client(self, client_id: str) -> int:
        async with self.db.begin() as conn:
            result = await conn.execute(sa.delete(grants).where(grants.c.client_id == client_id))
        return result.rowcount

    async def purge_expired(self, before: int, limit: int = PURGE_BATCH) -> int:
        statement = batch_delete(
            grants, grants.c.device_code_hash, grants.c.expires_at < before, limit
        )
        async with self.db.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount

    async def _one(self, query: sa.Select[Any], values: dict[str, Any]) -> DeviceGrant | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(query, values)).first()
        return _grant(row) if row else None

    async def _change(self, statement: sa.Update, values: dict[str, Any]) -> DeviceGrant | None:
        async with self.db.single() as conn:
            row = (await conn.execute(statement, values)).first()
        return _grant(row) if row else None
