"""What a resource server needs to accept Tokensmith credentials, and nothing of the server.

The core (this package minus ``asgi``, ``fastapi`` and ``flask``) imports no web framework:
``Guard`` turns a credential into a ``Principal`` or a ``GuardError`` that renders itself as an
RFC 6750 answer. See docs/guard.md.
"""

from tokensmith.guard.apikeys import ApiKeyChecker, RemoteApiKeyVerifier
from tokensmith.guard.credentials import Credential, read_credential
from tokensmith.guard.decryption import load_decryption_keys
from tokensmith.guard.dpop import DpopPolicy, ProofContext
from tokensmith.guard.dpop_nonces import DpopNonces
from tokensmith.guard.dpop_replay import MemoryProofCache, ProofReplayCache
from tokensmith.guard.errors import (
    DpopNonceRequired,
    DpopProofRefused,
    ForbiddenSource,
    GuardError,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingCredential,
    RateLimited,
    ServiceUnavailable,
    TokenExpired,
    UnknownKeyId,
    render,
)
from tokensmith.guard.guard import Guard
from tokensmith.guard.introspection import Introspector
from tokensmith.guard.jwks import JwksCache, parse_jwks
from tokensmith.guard.jwt import JwtValidator, StaticKeys
from tokensmith.guard.pinned import PinnedKey, pin
from tokensmith.guard.principal import Principal
from tokensmith.guard.txn_tokens import TxnTokenValidator

__all__ = [
    "ApiKeyChecker",
    "Credential",
    "DpopNonceRequired",
    "DpopNonces",
    "DpopPolicy",
    "DpopProofRefused",
    "ForbiddenSource",
    "Guard",
    "GuardError",
    "InsufficientScope",
    "Introspector",
    "InvalidRequest",
    "InvalidToken",
    "JwksCache",
    "JwtValidator",
    "MemoryProofCache",
    "MissingCredential",
    "PinnedKey",
    "Principal",
    "ProofContext",
    "ProofReplayCache",
    "RateLimited",
    "RemoteApiKeyVerifier",
    "ServiceUnavailable",
    "StaticKeys",
    "TokenExpired",
    "TxnTokenValidator",
    "UnknownKeyId",
    "load_decryption_keys",
    "parse_jwks",
    "pin",
    "read_credential",
    "render",
]
