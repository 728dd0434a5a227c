"""Brute-force lockouts and per-address limits at the endpoints that check a secret.

Names are ``account:<username>``, ``client:<client_id>@<address>`` and ``address:<ip>`` (and for
user codes typed at /device, ``user_code:<session>`` and ``user_code_address:<ip>``), an IPv6
address counted by its /64 (``core.addresses.address_bucket``: one host has 2^64 of them). The
lock check and the count are always one atomic step (SECURITY 57), in one of two ways:

- ``attempt`` for a password, whose Argon2id hash is the expensive part: the attempt *reserves*
  itself under each name before the hash runs, counted as a failure until a success refunds it.
  However many arrive at once, no more than the threshold reach the hash; a locked name costs no
  hash and no count.
- ``judge`` for a client secret or an API key, whose keyed hash costs a microsecond: the secret
  is checked first, then one step refuses if a name is locked and else counts a wrong one. Only
  the attempts judged before the lock get their own answer (at most the threshold of them
  wrong); every later one gets 429 whether its secret was right or not, so parallel guesses
  learn nothing past the threshold, and a client's parallel genuine requests never wait on each
  other.

A client is counted per address its attempts come from: bad secrets sent from one address under
a client's id never lock out the genuine client calling from another (SECURITY 58), while the
address's own lockout still stops the guesser. An account is locked by the name typed, whether
or not it exists, so a lock never tells whether an account exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tokensmith.adapters.redis_limits import Limits
from tokensmith.core.addresses import address_bucket
from tokensmith.core.lockouts import LockoutPolicy, Reservation, client_name
from tokensmith.errors import TooManyRequests
from tokensmith.oauth.clients import Client
from tokensmith.runtime.metrics import LOCKOUTS_BY_KIND, RATE_LIMITED_BY_KIND

__all__ = ["Attempt", "LockoutSettings", "Throttle"]

_WINDOW = 900.0


@dataclass(frozen=True, slots=True)
class LockoutSettings:
    account_failures: int
    client_failures: int
    address_failures: int
    first_lock: int
    longest_lock: int
    rate_limit_per_address: int | None = None
    user_code_failures: int = 5
    user_code_address_failures: int = 20


class Attempt:
    """One reserved attempt. It stays counted as a failure only if ``failed()`` is called."""

    def __init__(
        self,
        limits: Limits,
        names: list[tuple[str, str, LockoutPolicy]],
        reserved: Reservation,
    ) -> None:
        self._limits = limits
        self._names = names  # (kind, "kind:name", its policy)
        self._reserved = reserved
        self._failed = False

    def failed(self) -> None:
        """The secret was wrong: the reservation stands as the failure it counted."""
        self._failed = True

    async def _settle(self) -> None:
        if self._failed:
            for kind, name, _ in self._names:
                if name in self._reserved.locking:
                    LOCKOUTS_BY_KIND[kind].inc()
            return
        names = [(name, policy) for _, name, policy in self._names]
        reserved = self._reserved
        await self._limits.refund(names, shared=reserved.shared, counted_here=reserved.counted_here)


class Throttle:
    """The lockout and rate rules of this server, over the shared or per-node ``Limits``."""

    def __init__(self, limits: Limits, rules: LockoutSettings) -> None:
        self.limits = limits
        self._rate_per_address = rules.rate_limit_per_address
        first, longest = float(rules.first_lock), float(rules.longest_lock)
        # Built once: every judged request would otherwise build three.
        self._policies = {
            "account": LockoutPolicy(rules.account_failures, _WINDOW, first, longest),
            "client": LockoutPolicy(rules.client_failures, _WINDOW, first, longest),
            "address": LockoutPolicy(rules.address_failures, _WINDOW, first, longest),
            # User codes typed at /device (RFC 8628 §5.1), by session and by address.
            "user_code": LockoutPolicy(rules.user_code_failures, _WINDOW, first, longest),
            "user_code_address": LockoutPolicy(
                rules.user_code_address_failures, _WINDOW, first, longest
            ),
        }

    @asynccontextmanager
    async def attempt(self, **names: str | None) -> AsyncIterator[Attempt]:
        """Reserve an attempt under every named account, client and address, or raise
        TooManyRequests (429 + Retry-After) if any is locked or the address is over its rate.

        Inside the block, check the secret and call ``failed()`` if it was wrong. Anything else
        (a success, an error, a cancelled request) refunds the reservation on the way out.
        """
        named = _named(names)
        policies = [(kind, name, self._policies[kind]) for kind, name in named]
        reservation = await self.limits.reserve([(name, policy) for _, name, policy in policies])
        if reservation.wait is not None:
            await self._count_refusal(named)
            raise TooManyRequests(reservation.wait)
        tried = Attempt(self.limits, policies, reservation)
        try:
            await self.within_address_rate(names.get("address"))
            yield tried
        finally:
            await tried._settle()

    async def judge(self, *, failed: bool, **names: str | None) -> None:
        """After the secret was checked: raise TooManyRequests if any name is locked, else
        count the failure if it was one (both in one step)."""
        named = _named(names)
        verdict = await self.limits.judge(
            [(name, self._policies[kind]) for kind, name in named], failed
        )
        if verdict.wait is not None:
            await self._count_refusal(named)
            raise TooManyRequests(verdict.wait)
        for kind, name in named:
            if name in verdict.locking:
                LOCKOUTS_BY_KIND[kind].inc()

    async def judge_client(self, *, failed: bool, claimed: str | None, address: str) -> None:
        """``judge`` for a client authentication: the claimed client at this address, and the
        address."""
        await self.judge(failed=failed, client=client_name(claimed, address), address=address)

    async def held(self, name: str) -> int | None:
        """Seconds left on a lock or hold of ``name`` (a key held by an automatic response)."""
        return await self.limits.locked(name)

    async def within_address_rate(self, address: str | None) -> None:
        """Raise TooManyRequests if the address is over TOKENSMITH_RATE_LIMIT_PER_ADDRESS."""
        if not self._rate_per_address or not address:
            return
        wait = await self.limits.take(
            f"rate:address:{address_bucket(address)}", self._rate_per_address, 60.0
        )
        if wait is not None:
            RATE_LIMITED_BY_KIND["address"].inc()
            raise TooManyRequests(wait)

    async def admit(self, client: Client) -> None:
        """An authenticated client that is not held by an automatic response and is within its
        own request rate, if it has one. Only the client's own traffic ever reaches this."""
        held = await self.limits.locked(f"client:{client.client_id}")
        if held is not None:
            RATE_LIMITED_BY_KIND["client"].inc()
            raise TooManyRequests(held)
        if client.rate_limit is None:
            return
        wait = await self.limits.take(f"rate:client:{client.client_id}", client.rate_limit, 60.0)
        if wait is not None:
            RATE_LIMITED_BY_KIND["client"].inc()
            raise TooManyRequests(wait, "this client's request rate limit is exceeded")

    async def succeeded(self, **names: str | None) -> None:
        """Forget the earlier failures of the names (a user who signed in)."""
        for _, name in _named(names):  # the names the failures were counted under
            await self.limits.clear(name)

    async def _count_refusal(self, named: list[tuple[str, str]]) -> None:
        for kind, name in named:
            if await self.limits.locked(name) is not None:
                RATE_LIMITED_BY_KIND[kind].inc()


def _named(names: dict[str, str | None]) -> list[tuple[str, str]]:
    """(kind, "kind:name") for each name given; an address by its bucket (an IPv6 one's /64)."""
    return [
        (kind, f"{kind}:{address_bucket(name) if kind.endswith('address') else name}")
        for kind, name in names.items()
        if name
    ]
