"""Verifying a presented API key: offline shape check, one indexed lookup, constant-time compare.

Every refusal costs at most one lookup by the key's public id, and an unknown id does the same
work as a wrong secret (a keyed hash and a comparison against a stand-in), so neither answer nor
timing tells them apart. A short cache, keyed by the keyed hash of the whole key, saves the lookup
for a key seen within ``max_staleness`` seconds; that bound is also how long a revocation made on
another node can take to reach this one. A wrong secret never matches a cache entry, so it always
pays for the lookup, exactly like an unknown id.

Last-used times are kept in memory and written in batches (``flush_last_used``), never once per
request. A cached key keeps the identity its record gives (scopes, audiences: nothing of the
request), so a busy key costs the parse, the keyed hash and the per-use checks, not a rebuild;
the pepper's HMAC key schedule is computed once, each key's hash starts from a copy of it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tokensmith.apikeys.format import parse_api_key
from tokensmith.apikeys.records import ApiKeyRecord, ApiKeyStore
from tokensmith.core.addresses import parse_address
from tokensmith.core.clock import Clock
from tokensmith.core.ratelimit import RateLimiter
from tokensmith.core.secrets import constant_time_equals
from tokensmith.errors import OAuthError

__all__ = ["ApiKeyIdentity", "ApiKeyRefused", "ApiKeyVerifier", "RefusalReason"]

RefusalReason = Literal[
    "malformed", "invalid", "expired", "revoked", "forbidden_source", "rate_limited", "locked_out"
]

_DESCRIPTIONS: dict[RefusalReason, str] = {
    "malformed": "the API key is malformed or its checksum is wrong",
    "invalid": "the API key is not valid",
    "expired": "the API key has expired",
    "revoked": "the API key has been revoked",
    "forbidden_source": "the API key may not be used from this address",
    "rate_limited": "the API key's request rate limit is exceeded",
    "locked_out": "too many failed attempts from this address; retry later",
}
_CODES: dict[RefusalReason, str] = {
    "forbidden_source": "forbidden_source",
    "rate_limited": "rate_limited",
    "locked_out": "rate_limited",
}
_STAND_IN = b"\x00" * 32


class ApiKeyRefused(OAuthError):
    """Why a key was refused. ``key_id`` is set only once the key was proven genuine.

    The reason picks the code (``invalid_key``, ``forbidden_source`` or ``rate_limited``), and
    the code the status (401, 403, 429) from ``ERROR_CODES``."""

    def __init__(
        self, reason: RefusalReason, *, key_id: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(_DESCRIPTIONS[reason], code=_CODES.get(reason, "invalid_key"))
        self.reason: RefusalReason = reason
        self.key_id = key_id
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ApiKeyIdentity:
    key_id: str
    name: str
    owner: str
    scopes: frozenset[str]
    scope: str
    expires_at: int | None
    rate_limit: int | None
    audiences: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        # A bound key's answer names its audiences, so the guard and the gateway hold it to them
        # (docs/security.md, case 60); an unbound key's answer names none.
        audience = {"aud": list(self.audiences)} if self.audiences else {}
        return {
            "active": True,
            "key_id": self.key_id,
            "name": self.name,
            "owner": self.owner,
            "scope": self.scope,
            "expires_at": self.expires_at,
            "rate_limit": self.rate_limit,
            **audience,
        }


class ApiKeyVerifier:
    def __init__(
        self,
        store: ApiKeyStore,
        pepper: bytes,
        clock: Clock,
        *,
        max_staleness: float = 1.0,
        cache_size: int = 10_000,
        limiter: RateLimiter | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._keyed = hmac.new(pepper, digestmod=hashlib.sha256)  # core.secrets.keyed_hash's MAC
        self._clock = clock
        self._max_staleness = max_staleness
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, tuple[ApiKeyRecord, ApiKeyIdentity, float]] = OrderedDict()
        self._limiter = limiter or RateLimiter()
        self._monotonic = monotonic
        self._last_used: dict[str, int] = {}

    async def verify(self, presented: str, source_ip: str | None = None) -> ApiKeyIdentity:
        parsed = parse_api_key(presented)
        if parsed is None:
            raise ApiKeyRefused("malformed")
        digest = self._hash(parsed.text)
        entry = self._cached(digest)
        if entry is None:
            record = await self._store.get(parsed.key_id)
            expected = record.secret_hash if record is not None else _STAND_IN
            if not constant_time_equals(expected, digest) or record is None:
                raise ApiKeyRefused("invalid")
            entry = self._remember(digest, record)
        return self._admit(entry[0], entry[1], source_ip)

    def _hash(self, text: str) -> bytes:
        """``keyed_hash(pepper, text)``, from the MAC keyed once."""
        mac = self._keyed.copy()
        mac.update(text.encode("utf-8"))
        return mac.digest()

    def forget(self, key_id: str) -> None:
        """Drop a key from this node's cache at once (after revoking or rotating it here)."""
        for digest in [d for d, (r, _, _) in self._cache.items() if r.key_id == key_id]:
            del self._cache[digest]

    async def flush_last_used(self) -> int:
        batch, self._last_used = self._last_used, {}
        try:
            await self._store.touch(batch)
        except BaseException:
            for key_id, at in batch.items():
                self._last_used.setdefault(key_id, at)
            raise
        return len(batch)

    def _admit(
        self, record: ApiKeyRecord, identity: ApiKeyIdentity, source_ip: str | None
    ) -> ApiKeyIdentity:
        now = self._clock.now()
        if record.revoked_at is not None:
            raise ApiKeyRefused("revoked", key_id=record.key_id)
        if record.expires_at is not None and record.expires_at <= now:
            raise ApiKeyRefused("expired", key_id=record.key_id)
        if record.allowed_cidrs and not _address_allowed(source_ip, record.allowed_cidrs):
            raise ApiKeyRefused("forbidden_source", key_id=record.key_id)
        if record.rate_limit is not None:
            wait = self._limiter.take(record.key_id, record.rate_limit, 60.0)
            if wait is not None:
                raise ApiKeyRefused("rate_limited", key_id=record.key_id, retry_after=wait)
        self._last_used[record.key_id] = now
        return identity

    def _cached(self, digest: bytes) -> tuple[ApiKeyRecord, ApiKeyIdentity, float] | None:
        entry = self._cache.get(digest)
        if entry is None:
            return None
        if self._monotonic() - entry[2] >= self._max_staleness:
            del self._cache[digest]
            return None
        return entry

    def _remember(
        self, digest: bytes, record: ApiKeyRecord
    ) -> tuple[ApiKeyRecord, ApiKeyIdentity, float]:
        entry = (record, _identity(record), self._monotonic())
        if self._max_staleness <= 0:
            return entry
        self._cache[digest] = entry
        self._cache.move_to_end(digest)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return entry


def _identity(record: ApiKeyRecord) -> ApiKeyIdentity:
    return ApiKeyIdentity(
        key_id=record.key_id,
        name=record.name,
        owner=record.owner,
        scopes=frozenset(record.scope.split()),
        scope=record.scope,
        expires_at=record.expires_at,
        rate_limit=record.rate_limit,
        audiences=record.audiences,
    )


def _address_allowed(source_ip: str | None, cidrs: tuple[str, ...]) -> bool:
    address = parse_address(source_ip) if source_ip is not None else None
    if address is None:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
