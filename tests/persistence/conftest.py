"""The storage contract's fixture: every store, on the backend the test runs on.

``stores`` is the same set of stores whether the backend is ``memory`` (``persistence/memory``),
``sqlite`` or ``postgresql`` (the SQL repositories on a freshly migrated database), so a contract
test says one thing of all three. A contract module runs on all three with
``pytest.mark.backends(*BACKENDS)``; a test that only the SQL repositories can answer (a cache,
a statement count) leaves the marker out and runs on both databases, the storage suites' default.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.core.sealing import MasterKey, generate_master_key
from tokensmith.persistence import memory, migrate
from tokensmith.persistence.connections import close_connections
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
    SqlRefreshStore,
    SqlSessionStore,
    SqlSigningKeyStore,
    SqlTokenStore,
    SqlUserStore,
)
from tokensmith.runtime.services import open_engine
from tokensmith.settings import Settings

NOW = 1_700_000_000


def h(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


@dataclass
class Stores:
    """What ``Services`` holds of storage, on one backend; ``duplicate`` is what an insert of an
    existing key raises there."""

    backend: str
    master: MasterKey
    duplicate: type[Exception]
    clients: SqlClientStore | memory.MemoryClientStore
    users: SqlUserStore | memory.MemoryUserStore
    sessions: SqlSessionStore | memory.MemorySessionStore
    codes: SqlCodeStore | memory.MemoryCodeStore
    consents: SqlConsentStore | memory.MemoryConsentStore
    device_grants: SqlDeviceGrantStore | memory.MemoryDeviceGrantStore
    tokens: SqlTokenStore | memory.MemoryTokenStore
    refresh: SqlRefreshStore | memory.MemoryRefreshStore
    api_keys: SqlApiKeyStore | memory.MemoryApiKeyStore
    audit: SqlAuditStore | memory.MemoryAuditStore
    assertions: SqlAssertionStore | memory.MemoryAssertionStore
    dpop_proofs: SqlDpopProofStore | memory.MemoryDpopProofStore
    signing_keys: SqlSigningKeyStore | memory.MemorySigningKeyStore
    meta: SqlMetaStore | memory.MemoryMetaStore
    engine: AsyncEngine | None = None  # the SQL backends'

    @property
    def pepper(self) -> bytes:
        return self.master.pepper


@pytest.fixture
def sql_settings(backend: str, request: pytest.FixtureRequest) -> Settings | None:
    """The SQL backends' settings (a database of this test's own); None on ``memory``.

    Asked for here, outside the event loop: making a PostgreSQL schema runs a loop of its own.
    """
    return None if backend == "memory" else request.getfixturevalue("settings")


@pytest.fixture
async def stores(backend: str, sql_settings: Settings | None) -> AsyncIterator[Stores]:
    master = MasterKey.from_text(generate_master_key())
    if backend == "memory":
        held = memory.MemoryStores()
        yield Stores(
            backend,
            master,
            memory.DuplicateKey,
            clients=held.clients,
            users=held.users,
            sessions=held.sessions,
            codes=held.codes,
            consents=held.consents,
            device_grants=held.device_grants,
            tokens=held.tokens,
            refresh=held.refresh,
            api_keys=held.api_keys,
            audit=held.audit,
            assertions=held.assertions,
            dpop_proofs=held.dpop_proofs,
            signing_keys=held.signing_keys,
            meta=held.meta,
        )
        return
    assert sql_settings is not None
    engine = await open_engine(sql_settings)
    try:
        await migrate.upgrade(engine)
        yield Stores(
            backend,
            master,
            sa.exc.IntegrityError,
            clients=SqlClientStore(engine),
            users=SqlUserStore(engine),
            sessions=SqlSessionStore(engine),
            codes=SqlCodeStore(engine),
            consents=SqlConsentStore(engine),
            device_grants=SqlDeviceGrantStore(engine),
            tokens=SqlTokenStore(engine),
            refresh=SqlRefreshStore(engine),
            api_keys=SqlApiKeyStore(engine),
            audit=SqlAuditStore(engine),
            assertions=SqlAssertionStore(engine),
            dpop_proofs=SqlDpopProofStore(engine),
            signing_keys=SqlSigningKeyStore(engine),
            meta=SqlMetaStore(engine),
            engine=engine,
        )
    finally:
        close_connections(engine)
        await engine.dispose()
