"""Audit events. A record names a token only by its fingerprint, never by its value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = ["AuditEvent", "AuditQuery", "AuditSink", "AuditStore", "Outcome"]

Outcome = Literal["success", "failure", "denied", "info"]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    at: int
    event: str
    outcome: Outcome
    actor: str | None = None
    client_id: str | None = None
    subject: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    fingerprint: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    event_id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    since: int | None = None
    client_id: str | None = None
    subject: str | None = None
    event: str | None = None
    limit: int = 100


class AuditSink(Protocol):
    """Where protocol code reports events; it never waits for them to be stored."""

    def record(self, event: AuditEvent) -> None: ...


class AuditStore(Protocol):
    async def append(self, events: list[AuditEvent]) -> None: ...

    async def query(self, query: AuditQuery) -> list[AuditEvent]: ...

    async def purge(self, before: int, limit: int = ...) -> int: ...
