"""Rules that watch the event stream and raise alerts.

Each rule has a name, a threshold and an action; every alert is an ``Alert`` handed to the
callbacks (the server stores it in the audit trail as ``anomaly.<rule>``, counts it in a metric and
sends it to the webhooks). The detector keeps only bounded, in-memory state: per-identity tables
are least-recently-used and capped, so a flood of distinct clients, keys or addresses costs a
fixed amount of memory.

- ``refresh_reuse``: a rotated refresh token is presented again. The family is already revoked;
  alert.
- ``failure_burst``: ``burst_failures`` failed authentications for one client, account or address
  within ``burst_window``. The lockouts throttle; alert.
- ``new_network``: a client, user or key, once it has a history, is used from a /24 (IPv4) or /48
  (IPv6) network or with a user-agent family it has not used before. Alert.
- ``volume_spike``: a client's or key's requests in one ``spike_period`` exceed ``spike_factor``
  times its average over the ``spike_history`` periods before (and ``spike_minimum``). Alert.
- ``revoked_credential_used``: a revoked API key is presented, or a used code (or device code)
  comes back. Someone still holds it; alert.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tokensmith.audit.events import AuditEvent
from tokensmith.core.addresses import address_bucket, parse_address

__all__ = ["Alert", "AnomalyDetector", "AnomalyPolicy"]

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class AnomalyPolicy:
    burst_failures: int = 20
    burst_window: float = 60.0
    history_before_new_network: int = 3  # uses seen before a new network counts as unusual
    networks_per_identity: int = 32
    spike_factor: float = 10.0
    spike_minimum: int = 600  # requests in one period, below which nothing is a spike
    spike_period: float = 60.0
    spike_history: int = 5  # periods that make the baseline
    cooldown: float = 300.0  # the same rule and identity alert at most once per cooldown
    max_identities: int = 50_000


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    identity: str  # "client:<id>", "key:<id>", "account:<name>", "address:<ip>", "user:<id>"
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


class _Bounded(OrderedDict[K, V], Generic[K, V]):
    """A dict that forgets its least recently used entries past ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def touch(self, key: K, default: Callable[[], V]) -> V:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = default()
        self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


@dataclass(slots=True)
class _Usage:
    uses: int = 0
    networks: OrderedDict[str, None] = field(default_factory=OrderedDict)
    agents: OrderedDict[str, None] = field(default_factory=OrderedDict)


@dataclass(slots=True)
class _Volume:
    minute: int = -1
    count: int = 0
    history: deque[int] = field(default_factory=lambda: deque(maxlen=60))


_FAILURES = {"login.failure", "api_key.refused"}
_USES = {"token.issued", "api_key.used"}
_REPLAYS = {"code.replayed", "device.replayed"}  # a spent code, or device code, presented again


class AnomalyDetector:
    def __init__(
        self,
        policy: AnomalyPolicy | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or AnomalyPolicy()
        self._monotonic = monotonic
        self.listeners: list[Callable[[Alert], None]] = []
        limit = self.policy.max_identities
        self._failures: _Bounded[str, deque[float]] = _Bounded(limit)
        self._usage: _Bounded[str, _Usage] = _Bounded(limit)
        self._volume: _Bounded[str, _Volume] = _Bounded(limit)
        self._last_alert: _Bounded[tuple[str, str], float] = _Bounded(limit)

    def observe(self, event: AuditEvent) -> None:
        """Look at one event; never raises, never blocks."""
        name = event.event
        if name == "token.reuse_detected":
            self._alert(
                "refresh_reuse",
                f"client:{event.client_id}",
                "a rotated refresh token was used again; its family was revoked",
                {"subject": event.subject, **event.detail},
            )
        elif name in _REPLAYS or (
            name == "api_key.refused" and event.detail.get("reason") == "revoked"
        ):
            identity = (
                f"key:{event.fingerprint}"
                if name == "api_key.refused"
                else (f"client:{event.client_id}")
            )
            self._alert(
                "revoked_credential_used",
                identity,
                "a revoked credential was presented again: someone still holds it",
                {"event": name, "source_ip": event.source_ip},
            )
        if self._is_failure(event):
            for identity in self._identities(event, failure=True):
                self._count_failure(identity, event)
        if name in _USES and event.outcome == "success":
            # Where the event came from is the same for each of its identities: found once.
            network = _network(event.source_ip)
            agent = _agent_family(event.user_agent)
            minute = int(self._monotonic() // self.policy.spike_period)
            for identity in self._identities(event, failure=False):
                self._count_use(identity, event, network, agent)
                self._count_volume(identity, minute)

    # -- rules ---------------------------------------------------------------------------------

    def _count_failure(self, identity: str, event: AuditEvent) -> None:
        now = self._monotonic()
        window = self._failures.touch(identity, lambda: deque(maxlen=self.policy.burst_failures))
        window.append(now)
        if len(window) == window.maxlen and now - window[0] <= self.policy.burst_window:
            self._alert(
                "failure_burst",
                identity,
                f"{len(window)} failed authentications within {self.policy.burst_window:.0f} s",
                {"event": event.event, "source_ip": event.source_ip},
            )

    def _count_use(
        self, identity: str, event: AuditEvent, network: str | None, agent: str | None
    ) -> None:
        usage = self._usage.touch(identity, _Usage)
        seasoned = usage.uses >= self.policy.history_before_new_network
        usage.uses += 1
        new = []
        if network is not None and _remember(
            usage.networks, network, self.policy.networks_per_identity
        ):
            new.append(("network", network))
        if agent is not None and _remember(usage.agents, agent, self.policy.networks_per_identity):
            new.append(("user_agent", agent))
        if seasoned and new:
            self._alert(
                "new_network",
                identity,
                "used from " + " and ".join(f"a new {kind} {value}" for kind, value in new),
                {"source_ip": event.source_ip, "user_agent": event.user_agent},
            )

    def _count_volume(self, identity: str, minute: int) -> None:
        volume = self._volume.touch(identity, _Volume)
        if volume.minute != minute:
            if volume.minute >= 0:
                volume.history.append(volume.count)
                volume.history.extend([0] * min(60, minute - volume.minute - 1))
            volume.minute, volume.count = minute, 0
        volume.count += 1
        if volume.count < self.policy.spike_minimum:  # the common case: no baseline to compute
            return
        recent = list(volume.history)[-self.policy.spike_history :]
        if len(recent) < self.policy.spike_history:
            return
        baseline = max(1.0, sum(recent) / len(recent))
        if volume.count > self.policy.spike_factor * baseline:
            self._alert(
                "volume_spike",
                identity,
                f"{volume.count} requests in {self.policy.spike_period:.0f} s against a recent "
                f"average of {baseline:.0f}",
                {"count": volume.count, "baseline": round(baseline, 1)},
            )

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _is_failure(event: AuditEvent) -> bool:
        if event.event in _FAILURES:
            return event.detail.get("reason") in (None, "invalid", "malformed")
        return event.event.endswith(".refused") and event.detail.get("error") == "invalid_client"

    @staticmethod
    def _identities(event: AuditEvent, *, failure: bool) -> list[str]:
        found = []
        if event.event.startswith("api_key."):
            if event.fingerprint and not failure:
                found.append(f"key:{event.fingerprint}")
        elif event.event == "login.failure":
            username = event.detail.get("username")
            if isinstance(username, str) and username:
                found.append(f"account:{username.casefold()}")
        elif event.client_id:
            subject = event.subject
            found.append(f"client:{event.client_id}")
            if subject and subject != event.client_id and not failure:
                found.append(f"user:{subject}")
        if failure and event.source_ip:
            found.append(f"address:{address_bucket(event.source_ip)}")  # as lockouts count
        return found

    def _alert(self, rule: str, identity: str, summary: str, detail: dict[str, Any]) -> None:
        now = self._monotonic()
        last = self._last_alert.get((rule, identity))
        if last is not None and now - last < self.policy.cooldown:
            return
        self._last_alert.put((rule, identity), now)
        alert = Alert(rule, identity, summary, {k: v for k, v in detail.items() if v is not None})
        for listener in self.listeners:
            listener(alert)


def _remember(seen: OrderedDict[str, None], value: str, limit: int) -> bool:
    """Add ``value``; True if it was new. Keeps the ``limit`` most recently seen."""
    if value in seen:
        seen.move_to_end(value)
        return False
    seen[value] = None
    while len(seen) > limit:
        seen.popitem(last=False)
    return True


def _network(address: str | None) -> str | None:
    return _network_of(address) if address else None


@functools.lru_cache(maxsize=4096)  # parsing an address costs microseconds; callers repeat
def _network_of(address: str) -> str | None:
    ip = parse_address(address)
    if ip is None:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _agent_family(agent: str | None) -> str | None:
    """The product name a user agent starts with ("curl/8.5.0" -> "curl"); versions change."""
    if not agent:
        return None
    return agent.split("/", 1)[0].split(" ", 1)[0][:40].casefold() or None
