"""The signing-key life cycle: next -> active -> retiring -> retired.

A key is published in the JWKS from the moment it is created as ``next``, so verifiers that cache
the JWKS already hold it when it becomes ``active``. On rotation the active key becomes
``retiring`` and stays published until every token it could have signed has expired (the longest
token lifetime the server allows, plus clock leeway); then it is ``retired``, dropped from the
JWKS, and its private half is destroyed.

The ring reads and writes through ``SigningKeyStore``; private keys cross that boundary only
sealed with the master key. Transitions are conditional updates, so nodes that rotate at the same
moment cannot both win.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from tokensmith.core.clock import Clock
from tokensmith.core.sealing import MasterKey, SealError
from tokensmith.errors import TokensmithError
from tokensmith.jose.keys import (
    SigningKey,
    VerificationKey,
    generate_signing_key,
    load_private_key,
    verification_key_from_jwk,
)

__all__ = [
    "KeyRecord",
    "KeyRing",
    "KeyRingError",
    "KeyState",
    "RotationRefused",
    "SigningKeyStore",
]

log = logging.getLogger(__name__)

KeyState = Literal["next", "active", "retiring", "retired"]
_STATE_ORDER: dict[str, int] = {"active": 0, "next": 1, "retiring": 2, "retired": 3}


@dataclass(frozen=True, slots=True)
class KeyRecord:
    kid: str
    alg: str
    state: KeyState
    public_jwk: dict[str, Any]
    private_sealed: bytes | None
    created_at: int
    activated_at: int | None = None
    retiring_at: int | None = None
    publish_until: int | None = None


class SigningKeyStore(Protocol):
    async def list_keys(self, states: tuple[KeyState, ...]) -> list[KeyRecord]: ...

    async def add_key(self, record: KeyRecord) -> bool:
        """Insert; False if another writer already holds the state (one active, one next)."""
        ...

    async def delete_key(self, kid: str, state: KeyState) -> bool: ...

    async def promote(self, next_kid: str, active_kid: str | None, now: int, until: int) -> bool:
        """Atomically: active -> retiring (published until ``until``), next -> active."""
        ...

    async def retire_expired(self, now: int) -> list[str]:
        """Move retiring keys whose publication has ended to retired, erasing the private key."""
        ...


class KeyRingError(TokensmithError):
    """The stored keys cannot be used (wrong master key, altered rows); never silently replaced."""


class RotationRefused(TokensmithError):
    """Rotating now would activate a key that verifiers may not have fetched yet."""


def _context(kid: str) -> str:
    return f"signing_keys:{kid}"


class KeyRing:
    def __init__(
        self,
        store: SigningKeyStore,
        master: MasterKey,
        clock: Clock,
        *,
        algorithm: str,
        max_token_lifetime: int,
        jwks_max_age: int,
        leeway: int = 60,
    ) -> None:
        self._store = store
        self._master = master
        self._clock = clock
        self.algorithm = algorithm
        self._retire_after = max_token_lifetime + leeway
        self._jwks_max_age = jwks_max_age
        self._records: list[KeyRecord] = []
        self._verifiers: dict[str, VerificationKey] = {}
        self._active: SigningKey | None = None

    # -- reading -----------------------------------------------------------------------------

    @property
    def has_active(self) -> bool:
        return self._active is not None

    @property
    def active(self) -> SigningKey:
        if self._active is None:
            raise KeyRingError("no active signing key is loaded")
        return self._active

    def published(self) -> list[KeyRecord]:
        """Keys in the JWKS now: next, active, and retiring ones still inside their window."""
        now = self._clock.now()
        live = [
            r
            for r in self._records
            if r.state in ("next", "active")
            or (r.state == "retiring" and (r.publish_until or 0) > now)
        ]
        return sorted(live, key=lambda r: (_STATE_ORDER[r.state], -r.created_at))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [r.public_jwk for r in self.published()]}

    def verification_keys(self) -> dict[str, VerificationKey]:
        """Public keys of what is published now, parsed once per load rather than per call."""
        return {r.kid: self._verifiers[r.kid] for r in self.published()}

    # -- loading and first start -------------------------------------------------------------

    async def load(self) -> None:
        records = await self._store.list_keys(("next", "active", "retiring"))
        active = [r for r in records if r.state == "active"]
        signing: SigningKey | None = None
        for record in records:
            if record.state in ("next", "active"):
                key = self._open(record)  # proves the master key fits the next key too
                if record.state == "active":
                    signing = key
        self._verifiers = {r.kid: verification_key_from_jwk(r.public_jwk) for r in records}
        self._records = records
        self._active = signing if active else None

    async def ensure(self) -> None:
        """First start: create the active and next keys. Later starts: only fill a gap."""
        await self.load()
        states = {r.state for r in self._records}
        if "active" not in states:
            if "next" in states:
                await self._rotate()
            else:
                await self._store.add_key(self._new_record("active"))
        await self._ensure_next()
        await self.load()

    # -- rotation ----------------------------------------------------------------------------

    async def rotate(self, *, force: bool = False) -> KeyRecord:
        """Make the next key active; the old active key keeps being published while it matters."""
        await self.load()
        nxt = self._by_state("next")
        if nxt is None:
            await self._ensure_next()
            await self.load()
            nxt = self._by_state("next")
        assert nxt is not None
        published_for = self._clock.now() - nxt.created_at
        if not force and published_for < self._jwks_max_age:
            raise RotationRefused(
                f"the next key {nxt.kid} has been published for {published_for}s, less than the "
                f"JWKS cache lifetime ({self._jwks_max_age}s); verifiers may not know it yet. "
                "Wait, or pass --force."
            )
        await self._rotate()
        await self._ensure_next()
        await self.load()
        return self.record_for(self.active.kid)

    async def maintain(self, rotation_period: int | None) -> None:
        """Periodic upkeep on every node: retire expired keys, rotate when due, reload."""
        retired = await self._store.retire_expired(self._clock.now())
        for kid in retired:
            log.info("signing key retired", extra={"kid": kid})
        await self.load()
        active = self._by_state("active")
        due = (
            rotation_period is not None
            and active is not None
            and (active.activated_at or active.created_at) + rotation_period <= self._clock.now()
        )
        if due:
            try:
                await self.rotate()
                log.info("signing key rotated on schedule", extra={"kid": self.active.kid})
            except RotationRefused as exc:
                log.warning("scheduled rotation postponed: %s", exc)
        elif self._by_state("next") is None or self._next_alg_outdated():
            await self._ensure_next()
            await self.load()

    def record_for(self, kid: str) -> KeyRecord:
        for record in self._records:
            if record.kid == kid:
                return record
        raise KeyError(kid)

    # -- internals ---------------------------------------------------------------------------

    async def _rotate(self) -> None:
        nxt = self._by_state("next")
        if nxt is None:
            raise KeyRingError("there is no next key to activate")
        active = self._by_state("active")
        now = self._clock.now()
        won = await self._store.promote(
            nxt.kid, active.kid if active else None, now, now + self._retire_after
        )
        if won:
            log.info("signing key activated", extra={"kid": nxt.kid})
        # Lost the race: another node rotated at the same moment; its result stands.
        await self.load()

    async def _ensure_next(self) -> None:
        nxt = self._by_state("next")
        if nxt is not None and nxt.alg != self.algorithm:
            # The configured algorithm changed: the unused next key is replaced, so the change
            # takes effect at the next rotation without a gap in publication.
            await self._store.delete_key(nxt.kid, "next")
            nxt = None
        if nxt is None:
            await self._store.add_key(self._new_record("next"))

    def _next_alg_outdated(self) -> bool:
        nxt = self._by_state("next")
        return nxt is not None and nxt.alg != self.algorithm

    def _new_record(self, state: KeyState) -> KeyRecord:
        key = generate_signing_key(self.algorithm)
        now = self._clock.now()
        return KeyRecord(
            kid=key.kid,
            alg=key.alg,
            state=state,
            public_jwk=key.public_jwk(),
            private_sealed=self._master.seal(key.private_pem(), _context(key.kid)),
            created_at=now,
            activated_at=now if state == "active" else None,
        )

    def _open(self, record: KeyRecord) -> SigningKey:
        if record.private_sealed is None:
            raise KeyRingError(f"signing key {record.kid} has no private key stored")
        try:
            pem = self._master.unseal(record.private_sealed, _context(record.kid))
        except SealError:
            raise KeyRingError(
                f"signing key {record.kid} does not open with this master key "
                "(wrong TOKENSMITH_MASTER_KEY, or the stored key was altered)"
            ) from None
        return load_private_key(record.kid, record.alg, pem)

    def _by_state(self, state: KeyState) -> KeyRecord | None:
        return next((r for r in self._records if r.state == state), None)
