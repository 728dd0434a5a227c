"""Sessions and pending logins: what a cookie names, sealed in a store, with their timeouts.

A session ends at whichever comes first: ``session_idle_timeout`` after it was last used, or
``session_absolute_timeout`` after the login. A pending login (state, nonce, PKCE verifier, where
to go back to) lives ``login_timeout`` seconds and is taken, not read, by the callback, so one
login opens one session. A cookie that is malformed, unknown, altered, expired, or was sealed
under another key names no session; the caller answers 401 and calls no upstream.
"""

from __future__ import annotations

import re
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tokensmith.bff.sealing import Sealer, SealError, new_session_id
from tokensmith.bff.stores import Store
from tokensmith.core.clock import Clock

__all__ = ["PendingLogin", "SessionRecord", "Sessions", "well_formed_id"]

_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")
SESSION, LOGIN = "session", "login"


def well_formed_id(value: str | None) -> bool:
    return value is not None and _ID.match(value) is not None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    subject: str
    name: str | None
    email: str | None
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    access_expires_at: int
    created_at: int
    last_seen_at: int

    def ends_at(self, idle: int, absolute: int) -> int:
        return min(self.last_seen_at + idle, self.created_at + absolute)


@dataclass(frozen=True, slots=True)
class PendingLogin:
    state: str = field(repr=False)
    nonce: str = field(repr=False)
    verifier: str = field(repr=False)
    return_to: str
    created_at: int


class Sessions:
    def __init__(
        self,
        store: Store,
        sealer: Sealer,
        clock: Clock,
        *,
        idle: int,
        absolute: int,
        login_timeout: int,
    ) -> None:
        self.store = store
        self._sealer = sealer
        self._clock = clock
        self.idle = idle
        self.absolute = absolute
        self.login_timeout = login_timeout

    async def start_login(self, pending: PendingLogin) -> str:
        cookie = new_session_id()
        key = self._sealer.record_key(LOGIN, cookie)
        sealed = self._sealer.seal(asdict(pending), key)
        await self.store.put(key, sealed, pending.created_at + self.login_timeout)
        return cookie

    async def pending_login(self, cookie: str | None) -> PendingLogin | None:
        """The pending login this cookie started, left in the store; None if none is."""
        return await self._pending(cookie, take=False)

    async def finish_login(self, cookie: str | None) -> PendingLogin | None:
        """The pending login this cookie started, removed from the store; None if none is."""
        return await self._pending(cookie, take=True)

    async def _pending(self, cookie: str | None, *, take: bool) -> PendingLogin | None:
        if not well_formed_id(cookie):
            return None
        assert cookie is not None
        key = self._sealer.record_key(LOGIN, cookie)
        sealed = await (self.store.take(key) if take else self.store.get(key))
        record = self._open(sealed, key)
        if record is None:
            return None
        try:
            pending = PendingLogin(**record)
        except TypeError:
            return None
        if pending.created_at + self.login_timeout <= self._clock.now():
            return None
        return pending

    async def create(self, record: SessionRecord) -> tuple[str, bytes]:
        """A new session under a new id (never one the browser brought: no fixation)."""
        cookie = new_session_id()
        key = self._sealer.record_key(SESSION, cookie)
        await self.save(key, record)
        return cookie, key

    def key_of(self, cookie: str | None) -> bytes | None:
        if not well_formed_id(cookie):
            return None
        assert cookie is not None
        return self._sealer.record_key(SESSION, cookie)

    async def load(self, key: bytes) -> SessionRecord | None:
        """The live session under ``key``; an ended one is deleted. Use counts as activity."""
        record = self._record(self._open(await self.store.get(key), key))
        if record is None:
            return None
        now = self._clock.now()
        if record.ends_at(self.idle, self.absolute) <= now:
            await self.store.delete(key)
            return None
        if now - record.last_seen_at >= max(1, self.idle // 20):  # not a write per request
            record = replace(record, last_seen_at=now)
            await self.save(key, record)
        return record

    async def save(self, key: bytes, record: SessionRecord) -> None:
        sealed = self._sealer.seal(asdict(record), key)
        await self.store.put(key, sealed, record.ends_at(self.idle, self.absolute))

    async def end(self, key: bytes) -> None:
        await self.store.delete(key)

    def lock(self, key: bytes) -> AbstractAsyncContextManager[object]:
        return self.store.lock(key)

    def _open(self, sealed: bytes | None, key: bytes) -> dict[str, Any] | None:
        if sealed is None:
            return None
        try:
            return self._sealer.unseal(sealed, key)
        except (SealError, ValueError):  # altered, moved, or sealed under another session key
            return None

    @staticmethod
    def _record(data: dict[str, Any] | None) -> SessionRecord | None:
        if data is None:
            return None
        try:
            return SessionRecord(**data)
        except TypeError:
            return None
