"""Issued tokens and refresh-token families, by hash and by id, with their revocations.

Refresh tokens rotate on every use (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): each presented token is
exchanged once for a successor in the same family; presenting an already-rotated token is reuse,
and the caller revokes the whole family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tokensmith.accounts.users import User
from tokensmith.oauth.transactions import Transaction

__all__ = [
    "IssuedToken",
    "RefreshFamily",
    "RefreshStore",
    "RefreshToken",
    "RotationResult",
    "TokenStore",
    "not_claimable",
]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access token we issued: its jti, and for opaque tokens the keyed hash we look it up by."""

    jti: str
    client_id: str
    subject: str
    scope: str
    audience: str
    format: Literal["jwt", "opaque"]
    issued_at: int
    expires_at: int
    token_hash: bytes | None = None
    family_id: str | None = None
    code_hash: bytes | None = None
    revoked_at: int | None = None
    # Claims beyond the registered ones (``cnf``, ``act``): kept for opaque tokens, which carry
    # nothing themselves, and reported by introspection.
    claims: dict[str, Any] | None = None


class TokenStore(Protocol):
    def transaction(self) -> Transaction:
        """A unit of work on this store's database: every store there takes it."""
        ...

    async def add(self, token: IssuedToken, tx: Transaction | None = None) -> None:
        """Store the record now, or with ``tx`` when it commits."""
        ...

    async def get_by_hash(self, token_hash: bytes) -> IssuedToken | None: ...

    async def get_by_jti(self, jti: str) -> IssuedToken | None: ...

    async def revoke(self, jti: str, now: int) -> bool: ...

    async def record_revocation(self, token: IssuedToken, now: int) -> None:
        """Revoke by jti, inserting the record first if it was never stored (a bare JWT)."""
        ...

    async def revoke_by_family(self, family_id: str, now: int) -> int: ...

    async def revoke_for_client(self, client_id: str, now: int) -> int:
        """Revoke every stored access token of a client (it is being deleted)."""
        ...

    async def revoke_by_code(self, code_hash: bytes, now: int) -> int:
        """Revoke the code's access token and those of every refresh family begun by the code."""
        ...

    async def purge_expired(self, before: int, limit: int = ...) -> int:
        """Delete at most ``limit`` rows that expired before ``before``; how many went."""
        ...


@dataclass(frozen=True, slots=True)
class RefreshFamily:
    family_id: str
    client_id: str
    subject: str
    scope: str
    created_at: int
    session_id: str | None = None
    auth_time: int | None = None
    code_hash: bytes | None = None
    revoked_at: int | None = None
    revoked_reason: str | None = None
    dpop_jkt: str | None = None  # a public client's family is bound to its DPoP key (RFC 9449 §5)


@dataclass(frozen=True, slots=True)
class RefreshToken:
    token_hash: bytes
    family_id: str
    scope: str
    issued_at: int
    expires_at: int
    rotated_at: int | None = None
    successor_hash: bytes | None = None
    successor_sealed: bytes | None = field(default=None, repr=False)
    # A keyed fingerprint of the credential that rotated it, which a duplicate must match.
    rotated_by: bytes | None = field(default=None, repr=False)
    duplicates: int = 0  # duplicate presentations answered with the same successor


@dataclass(frozen=True, slots=True)
class RotationResult:
    # refused: a guard of the transaction ``rotate`` was given did not hold; nothing changed.
    outcome: Literal["rotated", "reused", "unknown", "revoked", "expired", "refused"]
    token: RefreshToken | None = None
    family: RefreshFamily | None = None


def not_claimable(token: RefreshToken, family: RefreshFamily, now: int) -> RotationResult | None:
    """Why ``token`` cannot be rotated at ``now``, in the order the outcomes rank; None if it
    can. Every store reports a refused claim through this one ranking."""
    if family.revoked_at is not None:
        return RotationResult("revoked", token, family)
    if token.expires_at <= now:
        return RotationResult("expired", token, family)
    if token.rotated_at is not None:
        return RotationResult("reused", token, family)
    return None


class RefreshStore(Protocol):
    async def create_family(
        self, family: RefreshFamily, first: RefreshToken, tx: Transaction | None = None
    ) -> None:
        """Store both now, or with ``tx`` when it commits."""
        ...

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
        """Replace ``token_hash`` by ``successor`` once; later calls report ``reused``.

        ``successor_sealed`` is kept on the rotated row for a client's grace window only, with
        ``rotated_by``, the fingerprint of the credential that rotated it. The claim holds the
        family's row (where the database locks rows) until it commits, so a concurrent
        revocation of the family either comes first and the claim fails, or waits and then
        finds every access token the rotation stored.
        ``family``, the token's family as the caller read it, spares the store reading it again.
        ``tx``'s writes are stored in the rotation's own transaction, and only if it rotates.
        """
        ...

    async def guard_duplicate(
        self, used: RefreshToken, rotated_since: int, most: int, tx: Transaction
    ) -> None:
        """A guard on ``tx``: count one more duplicate presentation of the rotated token
        ``used``, if it was rotated at or after ``rotated_since``, fewer than ``most``
        duplicates were answered, its family is not revoked (held as ``rotate`` holds it) and
        its successor has not been used. If any of that fails, ``tx`` stores nothing."""
        ...

    async def get(self, token_hash: bytes) -> tuple[RefreshToken, RefreshFamily] | None: ...

    async def get_with_subject(
        self, token_hash: bytes
    ) -> tuple[RefreshToken, RefreshFamily, User | None] | None:
        """``get``, and the family's user as it is now (None if gone), in one read."""
        ...

    async def revoke_family(self, family_id: str, now: int, reason: str) -> bool: ...

    async def forget_successors(self, rotated_before: int) -> int:
        """Erase sealed successors whose grace window has closed."""
        ...

    async def revoke_for_subject(self, subject: str, now: int, reason: str) -> int: ...

    async def revoke_by_code(self, code_hash: bytes, now: int, reason: str) -> int: ...

    async def revoke_for_client(self, client_id: str, now: int, reason: str) -> int: ...

    async def purge_ended(self, before: int, created_before: int, limit: int = ...) -> int:
        """Delete at most ``limit`` families that are over, with their tokens: begun before
        ``created_before``, or with no token that expires at or after ``before``."""
        ...

    async def revoke_for_session(self, session_id: str, now: int, reason: str) -> list[str]:
        """Revoke the session's families; return their ids so their access tokens go too."""
        ...
