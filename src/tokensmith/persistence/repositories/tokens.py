"""Access-token records and refresh-token families (implements ``TokenStore``, ``RefreshStore``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from tokensmith.accounts.users import User
from tokensmith.oauth.tokens import (
    IssuedToken,
    RefreshFamily,
    RefreshToken,
    RotationResult,
    not_claimable,
)
from tokensmith.oauth.transactions import Transaction
from tokensmith.persistence.connections import Conn
from tokensmith.persistence.repositories._base import (
    PURGE_BATCH,
    GuardFailed,
    Repository,
    as_dict,
    batch_delete,
    columns_of,
    is_duplicate,
    select_by,
    values_of,
)
from tokensmith.persistence.tables import issued_tokens as at
from tokensmith.persistence.tables import refresh_families as rf
from tokensmith.persistence.tables import refresh_tokens as rt
from tokensmith.persistence.tables import users

__all__ = ["SqlRefreshStore", "SqlTokenStore"]


_INSERT_TOKEN = sa.insert(at)
_TOKEN_BY_HASH = select_by(at, "token_hash")
_TOKEN_BY_JTI = select_by(at, "jti")
_INSERT_FAMILY = sa.insert(rf)
_INSERT_REFRESH = sa.insert(rt)
_REFRESH_JOINED = (
    sa.select(rt, *[c for c in rf.c if c.name not in rt.c])
    .join(rf, rf.c.family_id == rt.c.family_id)
    .where(rt.c.token_hash == sa.bindparam("token_hash"))
)
# The family's user beside the token, its columns prefixed (users.created_at is not the family's).
_REFRESH_WITH_USER = (
    sa.select(
        rt,
        *[c for c in rf.c if c.name not in rt.c],
        *[c.label("user_" + c.name) for c in users.c],
    )
    .select_from(
        rt.join(rf, rf.c.family_id == rt.c.family_id).outerjoin(
            users, users.c.user_id == rf.c.subject
        )
    )
    .where(rt.c.token_hash == sa.bindparam("token_hash"))
)
_FAMILY_BY_ID = select_by(rf, "family_id")
# The family, while it is not revoked, held until the statement's transaction commits
# (FOR NO KEY UPDATE on PostgreSQL; SQLite has one writer at a time anyway). A sub-select, not a
# CTE: Python's sqlite3 begins its implicit transaction only before a statement that starts
# with UPDATE, INSERT or DELETE, so a WITH ... UPDATE would commit on its own.: a revocation of the
# family waits for the commit, so its revocation of the family's access tokens finds the one
# stored with a rotation, and a rotation that waited for a revocation finds the family revoked.
_token_family = rt.alias("presented")
_LIVE_FAMILY = (
    sa.select(rf.c.family_id)
    .where(
        rf.c.family_id
        == sa.select(_token_family.c.family_id)
        .where(_token_family.c.token_hash == sa.bindparam("match_hash"))
        .scalar_subquery(),
        rf.c.revoked_at.is_(None),
    )
    .with_for_update(key_share=True)
)
# Every condition of a rotation in the one statement that claims the token; when it claims
# nothing, a read inside the same transaction says why (unknown, revoked, expired, reused).
_CLAIM_REFRESH = (
    sa.update(rt)
    .where(
        rt.c.token_hash == sa.bindparam("match_hash"),
        rt.c.rotated_at.is_(None),
        rt.c.expires_at > sa.bindparam("now"),
        rt.c.family_id.in_(_LIVE_FAMILY),
    )
    # An UPDATE's parameters may not be named like its columns.
    .values(
        rotated_at=sa.bindparam("now"),
        successor_hash=sa.bindparam("next_hash"),
        successor_sealed=sa.bindparam("next_sealed"),
        rotated_by=sa.bindparam("by"),
    )
    .returning(rt.c.family_id)
)
_successor = rt.alias("successor")
# The successor, while it is unused, locked as the family is: on PostgreSQL a plain EXISTS reads
# the statement's snapshot, so a rotation of the successor that committed while this statement
# waited for the family's row went unseen (case 170); a locking read sees the latest version.
_UNUSED_SUCCESSOR = (
    sa.select(_successor.c.token_hash)
    .where(
        _successor.c.token_hash == sa.bindparam("next_hash"),
        _successor.c.rotated_at.is_(None),
    )
    .with_for_update(read=True)
)
# One more duplicate answered, if the rotation is recent, the count allows it, the family is
# live (held as by the claim) and the successor is still unused.
_COUNT_DUPLICATE = (
    sa.update(rt)
    .where(
        rt.c.token_hash == sa.bindparam("match_hash"),
        rt.c.rotated_at >= sa.bindparam("since"),
        rt.c.duplicates < sa.bindparam("most"),
        rt.c.family_id.in_(_LIVE_FAMILY),
        rt.c.successor_hash.in_(_UNUSED_SUCCESSOR),
    )
    .values(duplicates=rt.c.duplicates + sa.literal_column("1", sa.Integer))
    .returning(rt.c.token_hash)
)


def _bytes_fields(data: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        if data.get(name) is not None:
            data[name] = bytes(data[name])
    return data


def _issued(row: sa.Row[Any]) -> IssuedToken:
    return IssuedToken(**_bytes_fields(as_dict(row), "token_hash", "code_hash"))


def _family(data: dict[str, Any]) -> RefreshFamily:
    return RefreshFamily(**_bytes_fields(columns_of(rf, data), "code_hash"))


def _refresh(data: dict[str, Any]) -> RefreshToken:
    fields = _bytes_fields(columns_of(rt, data), "token_hash", "successor_hash", "rotated_by")
    return RefreshToken(**fields)


class _Refused(Exception):
    """A rotation's transaction did not hold its guards: roll the claim back."""


class SqlTokenStore(Repository):
    async def add(self, token: IssuedToken, tx: Transaction | None = None) -> None:
        if tx is not None:
            self.joined(tx).write(_INSERT_TOKEN, values_of(at, token))
            return
        async with self.db.single() as conn:
            await conn.execute(_INSERT_TOKEN, values_of(at, token))

    async def get_by_hash(self, token_hash: bytes) -> IssuedToken | None:
        return await self._one(_TOKEN_BY_HASH, {"token_hash": token_hash})

    async def get_by_jti(self, jti: str) -> IssuedToken | None:
        return await self._one(_TOKEN_BY_JTI, {"jti": jti})

    async def revoke(self, jti: str, now: int) -> bool:
        return await self._revoke(at.c.jti == jti, now) == 1

    async def record_revocation(self, token: IssuedToken, now: int) -> None:
        if await self.revoke(token.jti, now) or await self.get_by_jti(token.jti):
            return
        try:
            async with self.db.begin() as conn:
                await conn.execute(
                    sa.insert(at).values(**values_of(at, replace(token, revoked_at=now)))
                )
        except sa.exc.IntegrityError as exc:
            if not is_duplicate(exc):
                raise
            await self.revoke(token.jti, now)  # a concurrent revocation inserted it first

    async def revoke_by_family(self, family_id: str, now: int) -> int:
        return await self._revoke(at.c.family_id == family_id, now)

    async def revoke_for_client(self, client_id: str, now: int) -> int:
        return await self._revoke(at.c.client_id == client_id, now)

    async def revoke_by_code(self, code_hash: bytes, now: int) -> int:
        # The code's own token, and every token its refresh families produced since.
        families = sa.select(rf.c.family_id).where(rf.c.code_hash == code_hash)
        return await self._revoke(
            sa.or_(at.c.code_hash == code_hash, at.c.family_id.in_(families)), now
        )

    async def purge_expired(self, before: int, limit: int = PURGE_BATCH) -> int:
        """Records of tokens expired before ``before``: a revoked JWT's record must outlive the
        JWT itself, so ``before`` lies a margin in the past."""
        statement = batch_delete(at, at.c.jti, at.c.expires_at < before, limit)
        async with self.db.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount

    async def _revoke(self, condition: sa.ColumnElement[bool], now: int) -> int:
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(at).where(condition, at.c.revoked_at.is_(None)).values(revoked_at=now)
            )
        return result.rowcount

    async def _one(self, query: sa.Select[Any], values: dict[str, Any]) -> IssuedToken | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(query, values)).first()
        return _issued(row) if row else None


class SqlRefreshStore(Repository):
    async def create_family(
        self, family: RefreshFamily, first: RefreshToken, tx: Transaction | None = None
    ) -> None:
        if tx is not None:
            joined = self.joined(tx)
            joined.write(_INSERT_FAMILY, values_of(rf, family))
            joined.write(_INSERT_REFRESH, values_of(rt, first))
            return
        async with self.db.begin() as conn:
            await conn.execute(_INSERT_FAMILY, values_of(rf, family))
            await conn.execute(_INSERT_REFRESH, values_of(rt, first))

    async def get(self, token_hash: bytes) -> tuple[RefreshToken, RefreshFamily] | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(_REFRESH_JOINED, {"token_hash": token_hash})).first()
        if row is None:
            return None
        data = as_dict(row)
        return _refresh(data), _family(data)

    async def get_with_subject(
        self, token_hash: bytes
    ) -> tuple[RefreshToken, RefreshFamily, User | None] | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(_REFRESH_WITH_USER, {"token_hash": token_hash})).first()
        if row is None:
            return None
        data = as_dict(row)
        user = None
        if data["user_user_id"] is not None:
            user = User(**{c.name: data["user_" + c.name] for c in users.c})
        return _refresh(data), _family(data), user

    async def rotate(
        self,
        token_hash: bytes,
        successor: RefreshToken,
        now: int,
        successor_sealed: bytes | None = None,
        *,
        family: RefreshFamily | None = None,
        tx: Transaction | None = None,
        rotated_by: bytes | None = None,
    ) -> RotationResult:
        then = self.joined(tx) if tx is not None else None
        try:
            async with self.db.begin() as conn:
                # Conditional update: of concurrent presentations of one token, one rotates.
                claimed = (
                    await conn.execute(
                        _CLAIM_REFRESH,
                        {
                            "match_hash": token_hash,
                            "now": now,
                            "next_hash": successor.token_hash,
                            "next_sealed": successor_sealed,
                            "by": rotated_by,
                        },
                    )
                ).first()
                if claimed is None:
                    return await self._not_rotated(conn, token_hash, now)
                if family is None or family.family_id != claimed.family_id:
                    found = await conn.execute(_FAMILY_BY_ID, {"family_id": claimed.family_id})
                    family = _family(as_dict(found.one()))
                await conn.execute(_INSERT_REFRESH, values_of(rt, successor))
                if then is not None:
                    try:
                        await then.run(conn)
                    except GuardFailed:
                        raise _Refused from None
        except _Refused:
            return RotationResult("refused")
        return RotationResult("rotated", successor, family)

    async def guard_duplicate(
        self, used: RefreshToken, rotated_since: int, most: int, tx: Transaction
    ) -> None:
        values = {
            "match_hash": used.token_hash,
            "since": rotated_since,
            "most": most,
            "next_hash": used.successor_hash,
        }
        self.joined(tx).guard(_COUNT_DUPLICATE, values)

    async def _not_rotated(self, conn: Conn, token_hash: bytes, now: int) -> RotationResult:
        """Why the claim found no row, in the order the outcomes rank; a token rotated by
        another request is reported as that request left it (the grace window reads it)."""
        row = (await conn.execute(_REFRESH_JOINED, {"token_hash": token_hash})).first()
        if row is None:
            return RotationResult("unknown")
        data = as_dict(row)
        token, family = _refresh(data), _family(data)
        refused = not_claimable(token, family, now)
        # None: it changed under us (not rotated now).
        return refused or RotationResult("unknown", token, family)

    async def revoke_family(self, family_id: str, now: int, reason: str) -> bool:
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(rf)
                .where(rf.c.family_id == family_id, rf.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason=reason)
            )
        return result.rowcount == 1

    async def forget_successors(self, rotated_before: int) -> int:
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(rt)
                .where(rt.c.successor_sealed.is_not(None), rt.c.rotated_at < rotated_before)
                .values(successor_sealed=None)
            )
        return result.rowcount

    async def revoke_for_subject(self, subject: str, now: int, reason: str) -> int:
        return await self._revoke_families(rf.c.subject == subject, now, reason)

    async def revoke_by_code(self, code_hash: bytes, now: int, reason: str) -> int:
        return await self._revoke_families(rf.c.code_hash == code_hash, now, reason)

    async def revoke_for_client(self, client_id: str, now: int, reason: str) -> int:
        return await self._revoke_families(rf.c.client_id == client_id, now, reason)

    async def revoke_for_session(self, session_id: str, now: int, reason: str) -> list[str]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                sa.select(rf.c.family_id).where(
                    rf.c.session_id == session_id, rf.c.revoked_at.is_(None)
                )
            )
            families = [row.family_id for row in rows]
        await self._revoke_families(rf.c.family_id.in_(families), now, reason)
        return families

    async def purge_ended(self, before: int, created_before: int, limit: int = PURGE_BATCH) -> int:
        """Delete families that are over, with all their tokens: begun before ``created_before``
        (past their absolute lifetime), or with no token that expires at or after ``before``.

        A family that still has a live token keeps every rotated token too, so a rotated token
        presented again is still recognised as reuse (RFC 9700 §4.14.2) until the family ends.
        """
        live_token = sa.exists().where(rt.c.family_id == rf.c.family_id, rt.c.expires_at >= before)
        ended = sa.or_(rf.c.created_at < created_before, sa.not_(live_token))
        async with self.db.begin() as conn:
            chosen = await conn.execute(sa.select(rf.c.family_id).where(ended).limit(limit))
            families = [row.family_id for row in chosen]
            if families:
                await conn.execute(sa.delete(rt).where(rt.c.family_id.in_(families)))
                await conn.execute(sa.delete(rf).where(rf.c.family_id.in_(families)))
        return len(families)

    async def _revoke_families(
        self, condition: sa.ColumnElement[bool], now: int, reason: str
    ) -> int:
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(rf)
                .where(condition, rf.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason=reason)
            )
        return result.rowcount
