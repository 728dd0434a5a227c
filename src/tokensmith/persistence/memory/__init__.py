"""In-memory implementations of every storage Protocol, for tests of the code above storage.

They honour what the SQL repositories (``persistence/repositories``) promise, edge cases
included: a code is consumed once, a refresh token rotates once and reports ``reused`` after,
revocations cascade as the SQL statements do, purges delete at most ``limit`` rows, lists come in
the same order. ``tests/persistence`` runs one contract suite against these stores and against the
repositories on SQLite and PostgreSQL, so the two cannot drift apart.

Stores made over one ``Tables`` see each other's rows, as repositories on one database do
(``TokenStore.revoke_by_code`` reaches the families the code began); ``MemoryStores`` is a full
set over one ``Tables``. Nothing here imports SQLAlchemy or any other framework; rows live as long
as the objects do, in this process only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tokensmith.persistence.memory._tables import PURGE_BATCH, DuplicateKey, Tables
from tokensmith.persistence.memory.api_keys import MemoryApiKeyStore
from tokensmith.persistence.memory.assertions import MemoryAssertionStore
from tokensmith.persistence.memory.audit import MemoryAuditStore
from tokensmith.persistence.memory.clients import MemoryClientStore
from tokensmith.persistence.memory.device_grants import MemoryDeviceGrantStore
from tokensmith.persistence.memory.dpop_proofs import MemoryDpopProofStore
from tokensmith.persistence.memory.grants import MemoryCodeStore, MemoryConsentStore
from tokensmith.persistence.memory.meta import MemoryMetaStore
from tokensmith.persistence.memory.sessions import MemorySessionStore
from tokensmith.persistence.memory.signing_keys import MemorySigningKeyStore
from tokensmith.persistence.memory.tokens import MemoryRefreshStore, MemoryTokenStore
from tokensmith.persistence.memory.users import MemoryUserStore

__all__ = [
    "PURGE_BATCH",
    "DuplicateKey",
    "MemoryApiKeyStore",
    "MemoryAssertionStore",
    "MemoryAuditStore",
    "MemoryClientStore",
    "MemoryCodeStore",
    "MemoryConsentStore",
    "MemoryDeviceGrantStore",
    "MemoryDpopProofStore",
    "MemoryMetaStore",
    "MemoryRefreshStore",
    "MemorySessionStore",
    "MemorySigningKeyStore",
    "MemoryStores",
    "MemoryTokenStore",
    "MemoryUserStore",
    "Tables",
]


@dataclass
class MemoryStores:
    """Every store, over one set of tables: what ``Services`` holds, without a database."""

    tables: Tables = field(default_factory=Tables)
    clients: MemoryClientStore = field(init=False)
    users: MemoryUserStore = field(init=False)
    sessions: MemorySessionStore = field(init=False)
    codes: MemoryCodeStore = field(init=False)
    consents: MemoryConsentStore = field(init=False)
    device_grants: MemoryDeviceGrantStore = field(init=False)
    tokens: MemoryTokenStore = field(init=False)
    refresh: MemoryRefreshStore = field(init=False)
    api_keys: MemoryApiKeyStore = field(init=False)
    audit: MemoryAuditStore = field(init=False)
    assertions: MemoryAssertionStore = field(init=False)
    dpop_proofs: MemoryDpopProofStore = field(init=False)
    signing_keys: MemorySigningKeyStore = field(init=False)
    meta: MemoryMetaStore = field(init=False)

    def __post_init__(self) -> None:
        t = self.tables
        self.clients = MemoryClientStore(t)
        self.users = MemoryUserStore(t)
        self.sessions = MemorySessionStore(t)
        self.codes = MemoryCodeStore(t)
        self.consents = MemoryConsentStore(t)
        self.device_grants = MemoryDeviceGrantStore(t)
        self.tokens = MemoryTokenStore(t)
        self.refresh = MemoryRefreshStore(t)
        self.api_keys = MemoryApiKeyStore(t)
        self.audit = MemoryAuditStore(t)
        self.assertions = MemoryAssertionStore(t)
        self.dpop_proofs = MemoryDpopProofStore(t)
        self.signing_keys = MemorySigningKeyStore(t)
        self.meta = MemoryMetaStore(t)


if TYPE_CHECKING:  # mypy holds every store to the Protocol its consumer declares
    from tokensmith.accounts.sessions import SessionStore
    from tokensmith.accounts.users import UserStore
    from tokensmith.apikeys.records import ApiKeyStore
    from tokensmith.audit.events import AuditStore
    from tokensmith.jose.keyring import SigningKeyStore
    from tokensmith.oauth.client_assertion import AssertionReplayStore
    from tokensmith.oauth.client_removal import ClientHoldings
    from tokensmith.oauth.clients import ClientStore
    from tokensmith.oauth.device_grants import DeviceGrantStore
    from tokensmith.oauth.dpop import ProofReplayStore
    from tokensmith.oauth.grants import CodeStore, ConsentStore
    from tokensmith.oauth.secret_leaks import LeakedSecretStore
    from tokensmith.oauth.tokens import RefreshStore, TokenStore

    def _implements(s: MemoryStores) -> None:
        clients: ClientStore = s.clients
        leaks: LeakedSecretStore = s.clients
        users: UserStore = s.users
        sessions: SessionStore = s.sessions
        codes: CodeStore = s.codes
        consents: ConsentStore = s.consents
        device_grants: DeviceGrantStore = s.device_grants
        tokens: TokenStore = s.tokens
        refresh: RefreshStore = s.refresh
        api_keys: ApiKeyStore = s.api_keys
        audit: AuditStore = s.audit
        assertions: AssertionReplayStore = s.assertions
        dpop_proofs: ProofReplayStore = s.dpop_proofs
        signing_keys: SigningKeyStore = s.signing_keys
        holdings: ClientHoldings = s
        del clients, leaks, users, sessions, codes, consents, tokens, refresh
        del api_keys, audit, assertions, signing_keys, holdings, device_grants, dpop_proofs
