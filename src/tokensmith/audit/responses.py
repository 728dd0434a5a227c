"""What the server does about an anomaly, beyond alerting: the optional automatic responses.

- ``volume_spike`` with ``TOKENSMITH_ANOMALY_SPIKE_ACTION=throttle``: the client or API key is held
  for ``TOKENSMITH_ANOMALY_THROTTLE`` seconds; its requests get 429 with Retry-After meanwhile,
  on every node (the hold is a lockout ``hold``, shared through Redis when configured).
- ``new_network`` with ``TOKENSMITH_ANOMALY_NEW_NETWORK_ACTION=reauthenticate``: a user seen from
  a new network or user agent loses every refresh token and login session, so the next refresh
  fails and the user signs in again. A client or key has no one to re-authenticate: alert only.

Alerts are raised on the request path; a response needs the database, so it is queued (bounded)
and carried out by a background task. Each response is an audit event (``anomaly.response``).

The responder knows its parts only by the Protocols below; ``runtime/services.py`` hands it the
server's lockouts (``adapters/redis_limits.py``) and refresh-token and session stores.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

from tokensmith.audit.anomalies import Alert
from tokensmith.audit.events import AuditEvent
from tokensmith.audit.trail import AuditTrail
from tokensmith.core.clock import Clock

__all__ = ["AnomalyResponder", "Holds", "RefreshRevoker", "ResponsePolicy", "SessionEnder"]

log = logging.getLogger(__name__)


class Holds(Protocol):
    async def hold(self, name: str, seconds: int) -> None: ...


class RefreshRevoker(Protocol):
    async def revoke_for_subject(self, subject: str, now: int, reason: str) -> int: ...


class SessionEnder(Protocol):
    async def end_for_user(self, user_id: str, now: int) -> int: ...


@dataclass(frozen=True, slots=True)
class ResponsePolicy:
    spike: Literal["alert", "throttle"] = "alert"
    new_network: Literal["alert", "reauthenticate"] = "alert"
    throttle_seconds: int = 300


class AnomalyResponder:
    def __init__(
        self,
        policy: ResponsePolicy,
        *,
        limits: Holds,
        refresh: RefreshRevoker,
        sessions: SessionEnder,
        trail: AuditTrail,
        clock: Clock,
        max_queue: int = 1000,
    ) -> None:
        self.policy = policy
        self._limits = limits
        self._refresh = refresh
        self._sessions = sessions
        self._trail = trail
        self._clock = clock
        self._queue: deque[Alert] = deque(maxlen=max_queue)
        self._wake = asyncio.Event()
        self.dropped = 0

    def handle(self, alert: Alert) -> None:
        """An alert listener: queue the alert if its rule has a response; never blocks."""
        if self._action(alert) is None:
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(alert)
        self._wake.set()

    async def run(self) -> None:
        """Carry out queued responses forever (a background task)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.drain()

    async def drain(self) -> None:
        while self._queue:
            alert = self._queue.popleft()
            try:
                await self._respond(alert)
            except Exception:  # the next alert still gets its response
                log.exception("anomaly response failed", extra={"rule": alert.rule})

    def _action(self, alert: Alert) -> str | None:
        kind = alert.identity.partition(":")[0]
        if alert.rule == "volume_spike" and self.policy.spike == "throttle":
            return "throttle" if kind in ("client", "key") else None
        if alert.rule == "new_network" and self.policy.new_network == "reauthenticate":
            return "reauthenticate" if kind == "user" else None
        return None

    async def _respond(self, alert: Alert) -> None:
        action = self._action(alert)
        now = self._clock.now()
        detail: dict[str, object] = {"rule": alert.rule, "identity": alert.identity}
        subject = None
        if action == "throttle":
            await self._limits.hold(alert.identity, self.policy.throttle_seconds)
            detail |= {"action": "throttle", "seconds": self.policy.throttle_seconds}
        elif action == "reauthenticate":
            subject = alert.identity.partition(":")[2]
            families = await self._refresh.revoke_for_subject(subject, now, "anomaly:new_network")
            sessions = await self._sessions.end_for_user(subject, now)
            detail |= {"action": "reauthenticate", "families": families, "sessions": sessions}
        else:
            return
        log.warning("anomaly response", extra=detail)
        await self._trail.write(
            AuditEvent(
                at=now,
                event="anomaly.response",
                outcome="info",
                actor="detector",
                subject=subject,
                detail=detail,
            )
        )
