"""One repository per aggregate; each implements the storage Protocol its consumer defines."""

from tokensmith.persistence.repositories.api_keys import SqlApiKeyStore
from tokensmith.persistence.repositories.assertions import SqlAssertionStore
from tokensmith.persistence.repositories.audit import SqlAuditStore
from tokensmith.persistence.repositories.clients import SqlClientStore
from tokensmith.persistence.repositories.device_grants import SqlDeviceGrantStore
from tokensmith.persistence.repositories.dpop_proofs import SqlDpopProofStore
from tokensmith.persistence.repositories.grants import SqlCodeStore, SqlConsentStore
from tokensmith.persistence.repositories.meta import SqlMetaStore
from tokensmith.persistence.repositories.sessions import SqlSessionStore
from tokensmith.persistence.repositories.signing_keys import SqlSigningKeyStore
from tokensmith.persistence.repositories.tokens import SqlRefreshStore, SqlTokenStore
from tokensmith.persistence.repositories.users import SqlUserStore

__all__ = [
    "SqlApiKeyStore",
    "SqlAssertionStore",
    "SqlAuditStore",
    "SqlClientStore",
    "SqlCodeStore",
    "SqlConsentStore",
    "SqlDeviceGrantStore",
    "SqlDpopProofStore",
    "SqlMetaStore",
    "SqlRefreshStore",
    "SqlSessionStore",
    "SqlSigningKeyStore",
    "SqlTokenStore",
    "SqlUserStore",
]
