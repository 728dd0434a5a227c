"""The writer of the audit trail: every event is a JSON log line and a stored record.

Administrative changes are stored and logged before the change is reported done (``write``).
Events raised on the request path (an issued token, a refused key) are queued and written in
batches (``record``): one insert and one write to the log per batch, not per request, which is what
keeps the trail's cost on the token endpoint low (bench/, the ``audit`` phase). The queue is
bounded: past its limit the oldest queued events are dropped, counted and logged, and memory stays
bounded. A process killed outright loses at most one flush interval of queued events.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, NamedTuple

from tokensmith.audit.events import AuditEvent, AuditStore

__all__ = ["AuditLine", "AuditTrail", "Origin", "log_lines", "request_origin"]

log = logging.getLogger("tokensmith.audit")


class Origin(NamedTuple):
    """Where the request that raised an event came from; set by the web layer per request."""

    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


# Events recorded while a request runs carry its origin, so protocol code never sees the request.
_NOWHERE = Origin()
request_origin: ContextVar[Origin] = ContextVar("request_origin", default=_NOWHERE)


class AuditLine(NamedTuple):
    """One event as the log shows it: when it happened (to the millisecond), and its request."""

    created: float
    request_id: str | None
    event: AuditEvent

    def fields(self) -> dict[str, Any]:
        event = self.event
        fields: dict[str, Any] = {"audit": True, "event": event.event}
        for name in _FIELDS:
            value = getattr(event, name)
            if value is not None:
                fields[name] = value
        if event.detail:
            fields["detail"] = event.detail
        return fields


LineWriter = Callable[[list[AuditLine]], None]


def log_lines(lines: list[AuditLine]) -> None:
    """The plain writer: one ``logging`` record per event (the server installs a faster one)."""
    if not log.isEnabledFor(logging.INFO):
        return
    for line in lines:
        log.info(line.event.event, extra=line.fields())


class AuditTrail:
    def __init__(
        self,
        store: AuditStore,
        *,
        max_pending: int = 10_000,
        request_events: bool = True,
        lines: LineWriter = log_lines,
    ) -> None:
        self._store = store
        self._lines = lines
        # Off only to measure what the trail costs (bench/); production refuses to turn it off.
        self._request_events = request_events
        # Each event is shown to these as it is recorded (the anomaly rules, the metrics).
        self.listeners: list[Callable[[AuditEvent], None]] = []
        # Lines and rows leave separately: a batch the database refused is not logged twice.
        self._unlogged: deque[AuditLine] = deque(maxlen=max_pending)
        self._pending: deque[AuditEvent] = deque(maxlen=max_pending)
        self.dropped = 0

    async def write(self, event: AuditEvent) -> None:
        """Store one event now; the caller's change is not done until this returns."""
        line = self._seen(event)
        self._lines([line])
        await self._store.append([line.event])

    def record(self, event: AuditEvent) -> None:
        """Queue an event for the next batch; never blocks, never raises."""
        if not self._request_events:
            return
        line = self._seen(event)
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
            log.warning("audit queue full: oldest event dropped", extra={"dropped": self.dropped})
        self._pending.append(line.event)
        self._unlogged.append(line)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Log and store what is queued; a batch the store refused goes back to the queue."""
        if self._unlogged:
            lines = list(self._unlogged)
            self._unlogged.clear()
            self._lines(lines)
        batch = list(self._pending)
        if not batch:
            return 0
        self._pending.clear()
        try:
            await self._store.append(batch)
        except BaseException:
            room = (self._pending.maxlen or 0) - len(self._pending)
            self._pending.extendleft(reversed(batch[-room:] if room > 0 else []))
            raise
        return len(batch)

    def _seen(self, event: AuditEvent) -> AuditLine:
        origin = request_origin.get()
        if event.source_ip is None and (origin.source_ip or origin.user_agent):
            event = _with_origin(event, origin)
        for listener in self.listeners:
            listener(event)
        return AuditLine(time.time(), origin.request_id, event)


def _with_origin(e: AuditEvent, origin: Origin) -> AuditEvent:
    # The constructor, not dataclasses.replace: this runs for every request event.
    return AuditEvent(
        e.at,
        e.event,
        e.outcome,
        e.actor,
        e.client_id,
        e.subject,
        origin.source_ip,
        origin.user_agent,
        e.fingerprint,
        e.detail,
        e.event_id,
    )


_FIELDS = (
    "at",
    "outcome",
    "actor",
    "client_id",
    "subject",
    "source_ip",
    "user_agent",
    "fingerprint",
)
