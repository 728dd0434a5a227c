"""Access-token records and refresh-token families in memory (``TokenStore``, ``RefreshStore``).

As ``SqlTokenStore`` and ``SqlRefreshStore``: a refresh token rotates once, and every later call
reports ``reused`` with the token as its winner left it; a revocation touches only what is not
revoked yet and says how much it touched; ``TokenStore.revoke_by_code`` also reaches the tokens of
the families the code began, which is why both stores stand on the same ``Tables``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace

from tokensmith.accounts.users import User
from tokensmith.oauth.tokens import (
    IssuedToken,
    RefreshFamily,
    RefreshToken,
    RotationResult,
    not_claimable,
)
from tokensmith.oauth.transactions import Transaction
from tokensmith.persistence.memory._tables import (
    PURGE_BATCH,
    DuplicateKey,
    MemoryTransaction,
    Tables,
    joined,
    round_trip,
)

__all__ = ["MemoryRefreshStore", "MemoryTokenStore"]

_Match = Callable[[IssuedToken], bool]
_FamilyMatch = Callable[[RefreshFamily], bool]


class MemoryTokenStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._tables = tables or Tables()
        self._rows = self._tables.issued_tokens

    def transaction(self) -> MemoryTransaction:
        return MemoryTransaction(self._tables)

    async def add(self, token: IssuedToken, tx: Transaction | None = None) -> None:
        if tx is not None:
            joined(self._tables, tx).write(lambda: self._insert(token))
            return
        await round_trip()
        self._insert(token)

    async def get_by_hash(self, token_hash: bytes) -> IssuedToken | None:
        await round_trip()
        return next((t for t in self._rows.values() if t.token_hash == token_hash), None)

    async def get_by_jti(self, jti: str) -> IssuedToken | None:
        await round_trip()
        return self._rows.get(jti)

    async def revoke(self, jti: str, now: int) -> bool:
        await round_trip()
        return self._revoke(lambda t: t.jti == jti, now) == 1

    async def record_revocation(self, token: IssuedToken, now: int) -> None:
        """Revoke by jti, inserting the record (revoked) if it was never stored: a bare JWT."""
        await round_trip()
        if token.jti in self._rows:
            self._revoke(lambda t: t.jti == token.jti, now)
            return
        # A token_hash that is another record's is refused, as by SQL's unique index; nothing more.
        with contextlib.suppress(DuplicateKey):
            self._insert(replace(token, revoked_at=now))

    async def revoke_by_family(self, family_id: str, now: int) -> int:
        await round_trip()
        return self._revoke(lambda t: t.family_id == family_id, now)

    async def revoke_for_client(self, client_id: str, now: int) -> int:
        await round_trip()
        return self._revoke(lambda t: t.client_id == client_id, now)

    async def revoke_by_code(self, code_hash: bytes, now: int) -> int:
        """The code's own token, and every token its refresh families produced since."""
        await round_trip()
        families = {
            f.family_id for f in self._tables.refresh_families.values() if f.code_hash == code_hash
        }
        return self._revoke(lambda t: t.code_hash == code_hash or t.family_id in families, now)

    async def purge_expired(self, before: int, limit: int = PURGE_BATCH) -> int:
        await round_trip()
        expired = [jti for jti, t in self._rows.items() if t.expires_at < before][:limit]
        for jti in expired:
            del self._rows[jti]
        return len(expired)

    def _insert(self, token: IssuedToken) -> None:
        if token.jti in self._rows:
            raise DuplicateKey(f"token {token.jti!r} exists")
        if token.token_hash is not None and any(
            t.token_hash == token.token_hash for t in self._rows.values()
        ):
            raise DuplicateKey("the token hash exists")
        self._rows[token.jti] = token

    def _revoke(self, matches: _Match, now: int) -> int:
        chosen = [t for t in self._rows.values() if t.revoked_at is None and matches(t)]
        for token in chosen:
            self._rows[token.jti] = replace(token, revoked_at=now)
        return len(chosen)


class MemoryRefreshStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._tables = tables = tables or Tables()
        self._families = tables.refresh_families
        self._tokens = tables.refresh_tokens

    async def create_family(
        self, family: RefreshFamily, first: RefreshToken, tx: Transaction | None = None
    ) -> None:
        if tx is not None:
            joined(self._tables, tx).write(lambda: self._create(family, first))
            return
        await round_trip()
        self._create(family, first)

    def _create(self, family: RefreshFamily, first: RefreshToken) -> None:
        if family.family_id in self._families:
            raise DuplicateKey(f"family {family.family_id!r} exists")
        if first.token_hash in self._tokens:
            raise DuplicateKey("the refresh token exists")
        self._families[family.family_id] = family
        self._tokens[first.token_hash] = first

    async def get(self, token_hash: bytes) -> tuple[RefreshToken, RefreshFamily] | None:
        await round_trip()
        return self._joined(token_hash)

    async def get_with_subject(
        self, token_hash: bytes
    ) -> tuple[RefreshToken, RefreshFamily, User | None] | None:
        await round_trip()
        found = self._joined(token_hash)
        if found is None:
            return None
        return found[0], found[1], self._tables.users.get(found[1].subject)

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
        """``family`` changes nothing here: the rows are at hand."""
        await round_trip()
        found = self._joined(token_hash)
        if found is None:
            return RotationResult("unknown")
        token, family = found  # the stored one, whatever the caller passed
        refused = not_claimable(token, family, now)
        if refused is not None:
            return refused

        def claim() -> None:
            if successor.token_hash in self._tokens:
                raise DuplicateKey("the successor exists")  # SQL rolls the claim back the same way
            self._tokens[token_hash] = replace(
                token,
                rotated_at=now,
                successor_hash=successor.token_hash,
                successor_sealed=successor_sealed,
                rotated_by=rotated_by,
            )
            self._tokens[successor.token_hash] = successor

        if tx is None:
            claim()
        elif not joined(self._tables, tx).apply(claim):
            return RotationResult("refused")
        return RotationResult("rotated", successor, family)

    async def guard_duplicate(
        self, used: RefreshToken, rotated_since: int, most: int, tx: Transaction
    ) -> None:
        token_hash = used.token_hash

        def holds() -> bool:
            token = self._tokens.get(token_hash)
            if token is None or token.rotated_at is None or token.rotated_at < rotated_since:
                return False
            family = self._families.get(token.family_id)
            successor = self._tokens.get(token.successor_hash or b"")
            if family is None or family.revoked_at is not None or token.duplicates >= most:
                return False
            if successor is None or successor.rotated_at is not None:
                return False
            self._tokens[token_hash] = replace(token, duplicates=token.duplicates + 1)
            return True

        joined(self._tables, tx).guard(holds)

    async def revoke_family(self, family_id: str, now: int, reason: str) -> bool:
        await round_trip()
        return self._revoke(lambda f: f.family_id == family_id, now, reason) == 1

    async def forget_successors(self, rotated_before: int) -> int:
        """Erase sealed successors whose grace window has closed."""
        await round_trip()
        closed = [
            t
            for t in self._tokens.values()
            if t.successor_sealed is not None
            and t.rotated_at is not None
            and t.rotated_at < rotated_before
        ]
        for token in closed:
            self._tokens[token.token_hash] = replace(token, successor_sealed=None)
        return len(closed)

    async def revoke_for_subject(self, subject: str, now: int, reason: str) -> int:
        await round_trip()
        return self._revoke(lambda f: f.subject == subject, now, reason)

    async def revoke_by_code(self, code_hash: bytes, now: int, reason: str) -> int:
        await round_trip()
        return self._revoke(lambda f: f.code_hash == code_hash, now, reason)

    async def revoke_for_client(self, client_id: str, now: int, reason: str) -> int:
        await round_trip()
        return self._revoke(lambda f: f.client_id == client_id, now, reason)

    async def revoke_for_session(self, session_id: str, now: int, reason: str) -> list[str]:
        """Revoke the session's live families; their ids, so their access tokens go too."""
        await round_trip()
        live = [
            f.family_id
            for f in self._families.values()
            if f.session_id == session_id and f.revoked_at is None
        ]
        self._revoke(lambda f: f.family_id in live, now, reason)
        return live

    async def purge_ended(self, before: int, created_before: int, limit: int = PURGE_BATCH) -> int:
        """Delete families that are over, with all their tokens: begun before ``created_before``,
        or with no token that expires at or after ``before`` (``SqlRefreshStore.purge_ended``)."""
        await round_trip()
        live = {t.family_id for t in self._tokens.values() if t.expires_at >= before}
        ended = [
            family_id
            for family_id, f in self._families.items()
            if f.created_at < created_before or family_id not in live
        ][:limit]
        gone = set(ended)
        for token_hash in [h for h, t in self._tokens.items() if t.family_id in gone]:
            del self._tokens[token_hash]
        for family_id in ended:
            del self._families[family_id]
        return len(ended)

    def _joined(self, token_hash: bytes) -> tuple[RefreshToken, RefreshFamily] | None:
        token = self._tokens.get(token_hash)
        family = self._families.get(token.family_id) if token is not None else None
        if token is None or family is None:
            return None  # the SQL join finds no row for a token without its family either
        return token, family

    def _revoke(self, matches: _FamilyMatch, now: int, reason: str) -> int:
        chosen = [f for f in self._families.values() if f.revoked_at is None and matches(f)]
        for family in chosen:
            self._families[family.family_id] = replace(
                family, revoked_at=now, revoked_reason=reason
            )
        return len(chosen)
