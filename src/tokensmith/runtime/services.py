"""The composition root: the running server's parts, opened in a safe order, each failure one
clear line. ``Services`` is typed by the storage Protocols; only this module names the SQL
repositories. The protocol objects are built from it by ``runtime/protocol.py``.

Start-up order: settings -> master key -> database reachable -> schema current -> master key
matches the database -> signing keys loaded (created only on a first start).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.accounts.sessions import SessionStore
from tokensmith.accounts.users import UserStore
from tokensmith.adapters.logs import audit_line_writer
from tokensmith.adapters.redis_limits import Limits
from tokensmith.adapters.redis_replay import RedisProofStore
from tokensmith.adapters.webhooks import WebhookSender
from tokensmith.apikeys.lifecycle import ApiKeyManager
from tokensmith.apikeys.records import ApiKeyStore
from tokensmith.apikeys.verifier import ApiKeyVerifier
from tokensmith.audit.anomalies import Alert, AnomalyDetector, AnomalyPolicy
from tokensmith.audit.events import AuditEvent, AuditStore
from tokensmith.audit.responses import AnomalyResponder, ResponsePolicy
from tokensmith.audit.trail import AuditTrail
from tokensmith.core.clock import Clock, SystemClock
from tokensmith.core.concurrency import Slots
from tokensmith.core.sealing import MasterKey
from tokensmith.errors import ConfigError, StartupError
from tokensmith.jose.keyring import KeyRing, KeyRingError
from tokensmith.oauth.client_assertion import AssertionReplayStore
from tokensmith.oauth.clients import ClientStore
from tokensmith.oauth.device_grants import DeviceGrantStore
from tokensmith.oauth.dpop import ProofReplayStore
from tokensmith.oauth.grants import CodeStore, ConsentStore
from tokensmith.oauth.pushed_requests import PushedRequestStore
from tokensmith.oauth.tokens import RefreshStore, TokenStore
from tokensmith.persistence import migrate
from tokensmith.persistence.connections import close_connections
from tokensmith.persistence.database import (
    DATABASE_ERRORS,
    create_engine,
    describe_url,
    normalise_url,
)
from tokensmith.persistence.repositories import (
    SqlApiKeyStore,
    SqlAssertionStore,
    SqlAuditStore,
    SqlClientStore,
    SqlCodeStore,
    SqlConsentStore,
    SqlDeviceGrantStore,
    SqlDpopProofStore,
    SqlMetaStore,
    SqlPushedRequestStore,
    SqlRefreshStore,
    SqlSessionStore,
    SqlSigningKeyStore,
    SqlTokenStore,
    SqlUserStore,
)
from tokensmith.runtime.cli_client import ensure_cli_client
from tokensmith.runtime.masterkey import confirm_master_key, resolve_master_key
from tokensmith.runtime.protocol import Protocol, build_protocol
from tokensmith.settings import Settings

__all__ = ["Services", "database_url", "open_engine", "open_services"]

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    master: MasterKey
    clock: Clock
    keyring: KeyRing
    clients: ClientStore
    users: UserStore
    codes: CodeStore
    consents: ConsentStore
    device_grants: DeviceGrantStore
    pushed_requests: PushedRequestStore
    tokens: TokenStore
    refresh: RefreshStore
    api_keys: ApiKeyStore
    audit: AuditStore
    sessions: SessionStore
    assertions: AssertionReplayStore
    dpop_proofs: ProofReplayStore  # Redis when configured, else the database (RFC 9449 §11.1)
    trail: AuditTrail
    webhooks: WebhookSender
    key_verifier: ApiKeyVerifier
    key_manager: ApiKeyManager
    limits: Limits
    anomalies: AnomalyDetector
    responder: AnomalyResponder
    password_slots: Slots  # bounds the Argon2id work of sign-ins (core/concurrency.py)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # The endpoints' protocol objects (runtime/protocol.py), built from the fields above.
    protocol: Protocol = field(init=False)

    def __post_init__(self) -> None:
        self.protocol = build_protocol(self)

    async def stop_tasks(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def close(self) -> None:
        await self.stop_tasks()
        await self.flush()
        await self.limits.close()
        if isinstance(self.dpop_proofs, RedisProofStore):
            await self.dpop_proofs.close()
        close_connections(self.engine)
        await self.engine.dispose()

    async def flush(self) -> None:
        """Store what is batched in memory (audit events, key last-used times); best effort."""
        try:
            await self.trail.flush()
            await self.key_verifier.flush_last_used()
        except DATABASE_ERRORS as exc:
            log.warning("batched records not stored at exit", extra={"error": type(exc).__name__})


def database_url(settings: Settings) -> URL:
    try:
        return normalise_url(settings.effective_database_url)
    except ValueError as exc:
        raise ConfigError(f"TOKENSMITH_DATABASE_URL: {exc}") from None


# UPDATE ... RETURNING spends a code and claims a refresh token in one statement (3.35, 2021).
MIN_SQLITE = (3, 35, 0)


def _check_sqlite_version(found: tuple[int, int, int]) -> None:
    if found < MIN_SQLITE:
        have, need = ".".join(map(str, found)), ".".join(map(str, MIN_SQLITE))
        raise StartupError(
            f"SQLite {have} is too old: Tokensmith needs {need} or newer (this Python's sqlite3 "
            "module links it); use PostgreSQL, or a Python built with a newer SQLite"
        )


async def open_engine(settings: Settings) -> AsyncEngine:
    """An engine whose database answered; a clear StartupError if it does not."""
    url = database_url(settings)
    if url.get_backend_name() == "sqlite":
        _check_sqlite_version(sqlite3.sqlite_version_info)
    try:
        engine = create_engine(
            url,
            schema=settings.database_schema,
            pool_size=settings.database_pool_size,
            timeout=settings.database_timeout,
        )
    except ValueError as exc:
        raise ConfigError(f"TOKENSMITH_DATABASE_SCHEMA: {exc}") from None
    try:
        async with asyncio.timeout(10), engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except DATABASE_ERRORS as exc:
        await engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else "timeout"
        raise StartupError(f"cannot reach the database at {describe_url(url)}: {reason}") from None
    return engine


async def ensure_schema(engine: AsyncEngine, *, apply: bool) -> None:
    head = migrate.head_revision()
    current = await migrate.current_revision(engine)
    if current == head:
        return
    if apply:
        await migrate.upgrade(engine)
        log.info("database migrated", extra={"from_revision": current, "to_revision": head})
        return
    raise StartupError(
        f"the database schema is at {current or 'nothing'} but this version needs {head}; "
        "run `tokensmith migrate`"
    )


async def open_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    apply_migrations: bool = False,
    create_keys: bool = True,
) -> Services:
    resolved = resolve_master_key(settings)
    engine = await open_engine(settings)
    try:
        await ensure_schema(engine, apply=apply_migrations)
        await confirm_master_key(resolved, SqlMetaStore(engine))
        clock = clock or SystemClock()
        keyring = KeyRing(
            SqlSigningKeyStore(engine),
            resolved.key,
            clock,
            algorithm=settings.signing_alg,
            max_token_lifetime=settings.token_max_lifetime,
            jwks_max_age=settings.jwks_max_age,
            leeway=settings.clock_leeway,
        )
        try:
            await (keyring.ensure() if create_keys else keyring.load())
        except KeyRingError as exc:
            raise StartupError(f"{exc}; refusing to start (nothing was changed)") from None
    except BaseException:
        close_connections(engine)
        await engine.dispose()
        raise
    audit = SqlAuditStore(engine)
    detector = AnomalyDetector(
        AnomalyPolicy(
            burst_failures=settings.anomaly_burst_failures,
            burst_window=settings.anomaly_burst_window,
            history_before_new_network=settings.anomaly_network_history,
            spike_factor=settings.anomaly_spike_factor,
            spike_minimum=settings.anomaly_spike_minimum,
            spike_period=settings.anomaly_spike_period,
            spike_history=settings.anomaly_spike_history,
            cooldown=settings.anomaly_cooldown,
        )
    )
    trail = AuditTrail(
        audit, request_events=settings.audit_request_events, lines=audit_line_writer()
    )
    trail.listeners.append(detector.observe)
    secret = settings.webhook_secret.get_secret_value().encode() if settings.webhook_secret else b""
    webhooks = WebhookSender(settings.webhooks, secret)
    detector.listeners.append(lambda alert: _raise_alert(alert, trail, webhooks, clock))
    api_keys = SqlApiKeyStore(engine)
    verifier = ApiKeyVerifier(
        api_keys, resolved.key.api_key_pepper, clock, max_staleness=settings.api_key_max_staleness
    )
    manager = ApiKeyManager(
        api_keys,
        trail,
        resolved.key.api_key_pepper,
        clock,
        env=settings.key_env,
        notify=webhooks.notify,
        on_change=verifier.forget,
    )
    limits = Limits(
        settings.redis_url, prefix=settings.redis_key_prefix, timeout=settings.redis_timeout
    )
    refresh = SqlRefreshStore(engine)
    sessions = SqlSessionStore(engine)
    responder = AnomalyResponder(
        ResponsePolicy(
            spike=settings.anomaly_spike_action,
            new_network=settings.anomaly_new_network_action,
            throttle_seconds=settings.anomaly_throttle,
        ),
        limits=limits,
        refresh=refresh,
        sessions=sessions,
        trail=trail,
        clock=clock,
    )
    detector.listeners.append(responder.handle)
    services = Services(
        settings=settings,
        engine=engine,
        master=resolved.key,
        clock=clock,
        keyring=keyring,
        clients=SqlClientStore(engine),
        users=SqlUserStore(engine),
        codes=SqlCodeStore(engine),
        consents=SqlConsentStore(engine),
        device_grants=SqlDeviceGrantStore(engine),
        pushed_requests=SqlPushedRequestStore(engine),
        tokens=SqlTokenStore(engine),
        refresh=refresh,
        api_keys=api_keys,
        audit=audit,
        sessions=sessions,
        assertions=SqlAssertionStore(engine),
        dpop_proofs=(
            RedisProofStore(
                settings.redis_url, prefix=settings.redis_key_prefix, timeout=settings.redis_timeout
            )
            if settings.redis_url
            else SqlDpopProofStore(engine)
        ),
        trail=trail,
        webhooks=webhooks,
        key_verifier=verifier,
        key_manager=manager,
        limits=limits,
        anomalies=detector,
        responder=responder,
        password_slots=Slots(
            settings.password_hash_concurrency or os.cpu_count() or 1, settings.password_hash_queue
        ),
    )
    try:
        await ensure_cli_client(services)
    except BaseException:
        await services.close()
        raise
    return services


def _raise_alert(alert: Alert, trail: AuditTrail, webhooks: WebhookSender, clock: Clock) -> None:
    """An anomaly goes to the audit trail and to the webhooks; neither waits on the other."""
    detail = {"identity": alert.identity, "summary": alert.summary, **alert.detail}
    trail.record(
        AuditEvent(
            at=clock.now(),
            event=f"anomaly.{alert.rule}",
            outcome="info",
            actor="detector",
            detail=detail,
        )
    )
    webhooks.notify(f"anomaly.{alert.rule}", detail)
