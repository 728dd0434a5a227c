"""Device authorizations (RFC 8628 §3): what a device asked for, and what its user decided.

A record is named by the keyed hash of its device code and found by the keyed hash of its user
code; neither code is stored. It moves once from ``pending`` to ``approved`` or ``denied`` (the
person's decision, §3.3) and an approved one once to ``redeemed`` (the token response, §3.5),
each by a conditional write, so that of any number of concurrent decisions or polls one wins.
A redeemed one polled again becomes ``replayed``: its device code was used twice, and what it
gave is revoked (the sibling of SECURITY 21).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from tokensmith.oauth.transactions import Transaction

__all__ = [
    "MAX_POLL_INTERVAL",
    "SLOW_DOWN_STEP",
    "DeviceDecision",
    "DeviceGrant",
    "DeviceGrantStore",
    "DeviceStatus",
    "Poll",
    "next_interval",
]

# RFC 8628 §3.5: after slow_down, "the interval MUST be increased by 5 seconds for all
# subsequent requests".
SLOW_DOWN_STEP = 5
# A poller that keeps ignoring slow_down would otherwise push its interval past the grant's
# lifetime; from here on it stays, and every too-fast poll still gets slow_down.
MAX_POLL_INTERVAL = 60

DeviceStatus = Literal["pending", "approved", "denied", "redeemed", "replayed"]


@dataclass(frozen=True, slots=True)
class DeviceGrant:
    device_code_hash: bytes
    user_code_hash: bytes
    client_id: str
    scope: str
    created_at: int
    expires_at: int
    poll_interval: int  # seconds between polls; grows by 5 at each slow_down (§3.5), up to 60
    resource: str | None = None  # the RFC 8707 resources asked for, space-separated
    status: DeviceStatus = "pending"
    last_polled_at: int | None = None
    user_id: str | None = None
    auth_time: int | None = None
    session_id: str | None = None
    decided_at: int | None = None

    def live(self, now: int) -> bool:
        return self.expires_at > now


@dataclass(frozen=True, slots=True)
class DeviceDecision:
    """A person's answer to a pending grant (§3.3), and who gave it: stored with the grant."""

    approved: bool
    user_id: str
    auth_time: int | None
    session_id: str | None

    @property
    def status(self) -> DeviceStatus:
        return "approved" if self.approved else "denied"


def next_interval(current: int) -> int:
    """The interval after a too-fast poll (§3.5), capped at ``MAX_POLL_INTERVAL``."""
    return max(current, min(current + SLOW_DOWN_STEP, MAX_POLL_INTERVAL))


@dataclass(frozen=True, slots=True)
class Poll:
    """One poll, recorded: the grant as it stands, and whether it came before its interval."""

    grant: DeviceGrant
    too_fast: bool


class DeviceGrantStore(Protocol):
    async def add(self, grant: DeviceGrant) -> bool:
        """Store a new grant; False, with nothing stored, if its device or user code exists."""
        ...

    async def get(self, device_code_hash: bytes) -> DeviceGrant | None: ...

    async def find_by_user_code(self, user_code_hash: bytes) -> DeviceGrant | None: ...

    async def poll(self, device_code_hash: bytes, client_id: str, now: int) -> Poll | None:
        """Record a poll by the grant's own client (None for another client or no grant). A
        poll sooner than ``poll_interval`` after the last one is too fast, and adds
        ``SLOW_DOWN_STEP`` seconds to the interval (§3.5 slow_down), up to
        ``MAX_POLL_INTERVAL``, in the write recording it."""
        ...

    async def decide(
        self, device_code_hash: bytes, decision: DeviceDecision, now: int
    ) -> DeviceGrant | None:
        """Approve or deny a pending, live grant, once; None if it is no longer pending or live."""
        ...

    async def redeem(self, device_code_hash: bytes, client_id: str, now: int) -> DeviceGrant | None:
        """Mark an approved, live grant redeemed and return it, once, to its own client."""
        ...

    async def guard_issue(self, device_code_hash: bytes, tx: Transaction) -> None:
        """Let ``tx`` commit only if the grant is still redeemed (not replayed, nor deleted) and
        its user exists and is enabled, checked after the transaction's writes. A replay's mark
        then waits for the commit, so its revocation sees what was stored, or refuses it."""
        ...

    async def mark_replayed(self, device_code_hash: bytes, client_id: str) -> bool:
        """Mark a redeemed grant of this client replayed; True the first time only."""
        ...

    async def delete_for_client(self, client_id: str) -> int: ...

    async def purge_expired(self, before: int, limit: int = ...) -> int:
        """Delete at most ``limit`` grants that expired before ``before``; how many went."""
        ...
