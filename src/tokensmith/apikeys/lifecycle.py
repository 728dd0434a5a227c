"""Creating, rotating, revoking and retiring leaked API keys; every change is an audit event.

The full key exists only in the ``IssuedApiKey`` a creation or rotation returns: what is stored is
its public id and a keyed hash (HMAC-SHA256 under a pepper derived from the master key), so the
database alone can neither use nor recover a key.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from tokensmith.apikeys.format import ApiKeyEnvironment, generate_api_key, parse_api_key
from tokensmith.apikeys.records import ApiKeyRecord, ApiKeyStore
from tokensmith.audit.events import AuditEvent
from tokensmith.audit.trail import AuditTrail
from tokensmith.core.clock import Clock
from tokensmith.core.scopes import format_scope, parse_scope
from tokensmith.core.secrets import constant_time_equals, keyed_hash
from tokensmith.errors import InvalidRequest, NotFound

__all__ = [
    "MAX_GRACE",
    "ApiKeyManager",
    "IssuedApiKey",
    "KeyStatus",
    "LeakReport",
    "LeakVerdict",
    "NewApiKey",
    "describe",
    "status_of",
]

log = logging.getLogger(__name__)

KeyStatus = Literal["active", "rotating", "expired", "revoked"]
MAX_GRACE = 30 * 86400
MAX_LIFETIME = 5 * 365 * 86400
MAX_CIDRS = 32
MAX_AUDIENCES = 10
MAX_RATE_LIMIT = 1_000_000
MAX_LEAK_REPORTS = 100
# Called with an event name and a JSON-ready payload; must not block (a webhook queue, say).
Notify = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class NewApiKey:
    name: str
    owner: str
    scope: str
    expires_in: int | None = None
    allowed_cidrs: tuple[str, ...] = ()
    rate_limit: int | None = None  # requests per minute
    audiences: tuple[str, ...] = ()  # resources it is bound to (RFC 8707 style); empty: any

    def validated(self) -> NewApiKey:
        """The same request, normalised; InvalidRequest names the first bad field."""
        name = self.name.strip()
        owner = self.owner.strip()
        if not 1 <= len(name) <= 200 or not name.isprintable():
            raise InvalidRequest("name must be 1-200 printable characters")
        if not 1 <= len(owner) <= 128 or not owner.isprintable():
            raise InvalidRequest("owner must be 1-128 printable characters")
        try:
            scopes = parse_scope(" ".join(self.scope.split()))
        except ValueError as exc:
            raise InvalidRequest(f"scope: {exc}") from None
        if not scopes:
            raise InvalidRequest("scope: a key needs at least one scope")
        if self.expires_in is not None and not 60 <= self.expires_in <= MAX_LIFETIME:
            raise InvalidRequest("expires_in must be between 60 seconds and 5 years")
        if self.rate_limit is not None and not 1 <= self.rate_limit <= MAX_RATE_LIMIT:
            raise InvalidRequest(f"rate_limit must be 1-{MAX_RATE_LIMIT} requests per minute")
        if len(self.allowed_cidrs) > MAX_CIDRS:
            raise InvalidRequest(f"at most {MAX_CIDRS} allowed address ranges")
        cidrs: list[str] = []
        for cidr in self.allowed_cidrs:
            try:
                cidrs.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
            except ValueError:
                raise InvalidRequest(f"{cidr!r} is not an IP address or range") from None
        return replace(
            self,
            name=name,
            owner=owner,
            scope=format_scope(scopes),
            allowed_cidrs=tuple(cidrs),
            audiences=_audiences(self.audiences),
        )


def _audiences(values: tuple[str, ...]) -> tuple[str, ...]:
    """Absolute http(s) URIs without a fragment, as resource indicators are (RFC 8707 §2)."""
    if len(values) > MAX_AUDIENCES:
        raise InvalidRequest(f"at most {MAX_AUDIENCES} audiences")
    kept: list[str] = []
    for value in (v.strip() for v in values):
        parts = urlsplit(value)
        if (
            len(value) > 200
            or not value.isprintable()
            or parts.scheme not in ("https", "http")
            or not parts.netloc
            or "#" in value
        ):
            raise InvalidRequest(f"audience {value[:60]!r} is not an absolute http(s) URI")
        if value not in kept:
            kept.append(value)
    return tuple(kept)


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    key: str = field(repr=False)  # shown once, never stored
    record: ApiKeyRecord


@dataclass(frozen=True, slots=True)
class LeakReport:
    """One candidate from a secret-scanning partner (the shape GitHub's programme posts)."""

    token: str = field(repr=False)
    type: str = ""
    url: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class LeakVerdict:
    token_hash: str  # SHA-256 of the candidate, so the answer never echoes a secret
    token_type: str
    label: Literal["true_positive", "false_positive"]


def status_of(record: ApiKeyRecord, now: int) -> KeyStatus:
    if record.revoked_at is not None:
        return "revoked"
    if record.expires_at is not None and record.expires_at <= now:
        return "expired"
    return "rotating" if record.replaced_by is not None else "active"


def describe(record: ApiKeyRecord, now: int) -> dict[str, Any]:
    """What listing a key shows: everything but its hash."""
    return {
        "key_id": record.key_id,
        "prefix": f"tsk_*_{record.key_id}",
        "name": record.name,
        "owner": record.owner,
        "scope": record.scope,
        "status": status_of(record, now),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_used_at": record.last_used_at,
        "revoked_at": record.revoked_at,
        "allowed_cidrs": list(record.allowed_cidrs),
        "rate_limit": record.rate_limit,
        "audiences": list(record.audiences),
        "replaced_by": record.replaced_by,
    }


class ApiKeyManager:
    def __init__(
        self,
        store: ApiKeyStore,
        audit: AuditTrail,
        pepper: bytes,
        clock: Clock,
        *,
        env: ApiKeyEnvironment,
        notify: Notify | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._audit = audit
        self._pepper = pepper
        self._clock = clock
        self._env = env
        self._notify = notify
        # Told the id of every key revoked or rotated here, so this node's caches drop it at once.
        self._on_change = on_change

    async def create(self, new: NewApiKey, actor: str) -> IssuedApiKey:
        new = new.validated()
        now = self._clock.now()
        issued = await self._store_new(new, now)
        await self._event("api_key.created", actor, issued.record)
        return issued

    async def get(self, key_id: str) -> ApiKeyRecord:
        record = await self._store.get(key_id) if _plausible_id(key_id) else None
        if record is None:
            raise NotFound(f"no API key {key_id!r}")
        return record

    async def list_keys(self, owner: str | None = None) -> list[ApiKeyRecord]:
        return await self._store.list(owner)

    async def rotate(
        self, key_id: str, actor: str, *, grace: int, expires_in: int | None = None
    ) -> IssuedApiKey:
        """A new key with the old one's name, owner, scope and limits; the old one keeps working
        for ``grace`` seconds (0: it stops now). An unchanged lifetime is carried over."""
        if not 0 <= grace <= MAX_GRACE:
            raise InvalidRequest("grace must be between 0 and 30 days")
        old = await self.get(key_id)
        now = self._clock.now()
        status = status_of(old, now)
        if status != "active":
            hint = f"; rotate {old.replaced_by} instead" if old.replaced_by else ""
            raise InvalidRequest(f"key {key_id} is {status} and cannot be rotated{hint}")
        if expires_in is None and old.expires_at is not None:
            expires_in = max(60, old.expires_at - old.created_at)
        new = NewApiKey(
            name=old.name,
            owner=old.owner,
            scope=old.scope,
            expires_in=expires_in,
            allowed_cidrs=old.allowed_cidrs,
            rate_limit=old.rate_limit,
            audiences=old.audiences,
        ).validated()
        issued = await self._store_new(new, now)
        await self._store.set_expiry(old.key_id, now + grace, issued.record.key_id)
        self._changed(old.key_id)
        await self._event(
            "api_key.rotated",
            actor,
            issued.record,
            {"replaces": old.key_id, "grace": grace},
        )
        return issued

    async def revoke(self, key_id: str, actor: str) -> ApiKeyRecord:
        record = await self.get(key_id)
        if await self._store.revoke(key_id, self._clock.now()):
            self._changed(key_id)
            await self._event("api_key.revoked", actor, record)
        return await self.get(key_id)

    async def report_leaks(self, reports: Sequence[LeakReport], reporter: str) -> list[LeakVerdict]:
        """Revoke every genuine key among the candidates at once, and tell its owner."""
        if len(reports) > MAX_LEAK_REPORTS:
            raise InvalidRequest(f"at most {MAX_LEAK_REPORTS} candidates per report")
        return [await self._judge_leak(report, reporter) for report in reports]

    async def _judge_leak(self, report: LeakReport, reporter: str) -> LeakVerdict:
        token_hash = hashlib.sha256(report.token.encode("utf-8", "replace")).hexdigest()
        parsed = parse_api_key(report.token)
        record = await self._store.get(parsed.key_id) if parsed is not None else None
        genuine = (
            parsed is not None
            and record is not None
            and constant_time_equals(record.secret_hash, keyed_hash(self._pepper, parsed.text))
        )
        if not genuine or record is None:
            return LeakVerdict(token_hash, report.type, "false_positive")
        now = self._clock.now()
        revoked_now = await self._store.revoke(record.key_id, now)
        self._changed(record.key_id)
        where = {"url": report.url[:2048], "source": report.source[:200], "reporter": reporter}
        await self._event(
            "api_key.leaked", f"reporter:{reporter}", record, {**where, "revoked": revoked_now}
        )
        if self._notify is not None:
            payload = {
                "key_id": record.key_id,
                "name": record.name,
                "owner": record.owner,
                "revoked_at": now if revoked_now else record.revoked_at,
                **where,
            }
            self._notify("api_key.leaked", payload)
        return LeakVerdict(token_hash, report.type, "true_positive")

    async def _store_new(self, new: NewApiKey, now: int) -> IssuedApiKey:
        for _ in range(3):  # 71 random bits of id: a clash is a curiosity, not an error
            key = generate_api_key(self._env)
            record = ApiKeyRecord(
                key_id=key.key_id,
                name=new.name,
                owner=new.owner,
                secret_hash=keyed_hash(self._pepper, key.text),
                scope=new.scope,
                created_at=now,
                expires_at=now + new.expires_in if new.expires_in is not None else None,
                allowed_cidrs=new.allowed_cidrs,
                rate_limit=new.rate_limit,
                audiences=new.audiences,
            )
            if await self._store.add(record):
                return IssuedApiKey(key.text, record)
        raise RuntimeError("could not allocate a unique API key id")

    async def _event(
        self,
        event: str,
        actor: str,
        record: ApiKeyRecord,
        extra: dict[str, Any] | None = None,
    ) -> None:
        detail = {"key_id": record.key_id, "name": record.name, "scope": record.scope}
        await self._audit.write(
            AuditEvent(
                at=self._clock.now(),
                event=event,
                outcome="success",
                actor=actor,
                subject=record.owner,
                fingerprint=record.key_id,
                detail={**detail, **(extra or {})},
            )
        )

    def _changed(self, key_id: str) -> None:
        if self._on_change is not None:
            self._on_change(key_id)


def _plausible_id(key_id: str) -> bool:
    return len(key_id) == 12 and key_id.isascii() and key_id.isalnum()
