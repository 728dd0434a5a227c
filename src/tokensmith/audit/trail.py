"""The writer of the audit trail: every event is a JSON log line and a stored record.

Administrative changes are stored before the change is reported done (``write``). Events raised on
the request path (a refused key, say) are queued and stored in batches (``record``), so that a
flood of bad requests costs one insert per batch, not one per request. The queue is bounded: past
its limit the oldest queued events are dropped, counted and logged, and memory stays bounded.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar

from tokensmith.audit.events import AuditEvent, AuditStore

__all__ = ["AuditTrail", "request_origin"]

log = logging.getLogger("tokensmith.audit")

# Set by the web layer for each request: (source address, user agent). Events recorded while the
# request runs carry them, so protocol code never needs to see the request.
request_origin: ContextVar[tuple[str | None, str | None]] = ContextVar(
    "request_origin", default=(None, None)
)


class AuditTrail:
    def __init__(
        self,
        store: AuditStore,
        *,
        max_pending: int = 10_000,
        request_events: bool = True,
    ) -> None:
        self._store = store
        # Off only to measure what the trail costs (bench/); production refuses to turn it off.
        self._request_events = request_events
        # Each event is shown to these as it is recorded (the anomaly rules, the metrics).
        self.listeners: list[Callable[[AuditEvent], None]] = []
        self._pending: deque[AuditEvent] = deque(maxlen=max_pending)
        self.dropped = 0

    async def write(self, event: AuditEvent) -> None:
        """Store one event now; the caller's change is not done until this returns."""
        event = _with_origin(event)
        _log(event)
        for listener in self.listeners:
            listener(event)
        await self._store.append([event])

    def record(self, event: AuditEvent) -> None:
        """Queue an event for the next batch; never blocks, never raises."""
        if not self._request_events:
            return
        event = _with_origin(event)
        _log(event)
        for listener in self.listeners:
            listener(event)
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
            log.warning("audit queue full: oldest event dropped", extra={"dropped": self.dropped})
        self._pending.append(event)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Store what is queued. On failure the batch goes back to the front of the queue."""
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


def _with_origin(event: AuditEvent) -> AuditEvent:
    if event.source_ip is not None:
        return event
    source_ip, user_agent = request_origin.get()
    if source_ip is None and user_agent is None:
        return event
    return dataclasses.replace(event, source_ip=source_ip, user_agent=user_agent)


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


def _log(event: AuditEvent) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    fields = {name: getattr(event, name) for name in _FIELDS}
    extra = {k: v for k, v in fields.items() if v is not None}
    if event.detail:
        extra["detail"] = event.detail
    log.info(event.event, extra={"audit": True, "event": event.event, **extra})
