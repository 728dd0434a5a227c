"""The synchronous core on its own: the public API, the token cache, key changes."""

from __future__ import annotations

import pytest

import tokensmith.guard as guard_package
from tests.guard.forge import AUDIENCE, ISSUER, claims, new_key, sign
from tokensmith.core.clock import FrozenClock
from tokensmith.guard import InvalidToken, JwtValidator, StaticKeys, TokenExpired, pin
from tokensmith.jose.keys import verification_key_from_jwk


def test_public_api_is_pinned() -> None:
    assert sorted(guard_package.__all__) == [
        "ApiKeyChecker", "Credential", "DpopNonceRequired", "DpopNonces", "DpopPolicy",
        "DpopProofRefused", "ForbiddenSource", "Guard", "GuardError",
        "InsufficientScope", "Introspector", "InvalidRequest", "InvalidToken", "JwksCache",
        "JwtValidator", "MemoryProofCache", "MissingCredential", "PinnedKey", "Principal",
        "ProofContext", "ProofReplayCache", "RateLimited",
        "RemoteApiKeyVerifier", "ServiceUnavailable", "StaticKeys", "TokenExpired",
        "TxnTokenValidator", "UnknownKeyId", "load_decryption_keys", "parse_jwks", "pin",
        "read_credential", "render",
    ]  # fmt: skip


def test_cached_tokens_expire_with_the_token() -> None:
    key = new_key()
    clock = FrozenClock(start=2_000_000_000)
    keys = StaticKeys([pin(verification_key_from_jwk(key.public_jwk()))])
    validator = JwtValidator(keys, issuer=ISSUER, audiences=[AUDIENCE], leeway=5, clock=clock)
    token = sign(key, claims(iat=clock.now(), exp=clock.now() + 60))
    assert validator.validate(token).expires_at == clock.now() + 60
    assert validator.validate(token).subject == "user-1"
    assert validator.cached_tokens == 1
    clock.advance(64)  # past exp, inside the leeway
    assert validator.validate(token).subject == "user-1"
    clock.advance(2)
    with pytest.raises(TokenExpired):
        validator.validate(token)


def test_forgotten_key_set_means_revalidation() -> None:
    key, other = new_key(), new_key()
    keys = StaticKeys([pin(verification_key_from_jwk(key.public_jwk()))])
    validator = JwtValidator(keys, issuer=ISSUER, audiences=[AUDIENCE])
    token = sign(key, claims())
    validator.validate(token)
    keys.keys = {other.kid: pin(verification_key_from_jwk(other.public_jwk()))}
    validator.forget()
    with pytest.raises(InvalidToken):
        validator.validate(token)
