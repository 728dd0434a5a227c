"""In-process scenarios for Tokensmith's own code paths, each read against a raw primitive.

- the guard's first-sight JWT validation (ES256, RS256, EdDSA) against the raw ``cryptography``
  verify with the same key (RS256 keys are 3072-bit, as Tokensmith makes them): every call sees a
  new token, so nothing is cached;
- the guard's repeat validation of one token (its cache);
- API-key verification in process (``ApiKeyVerifier``: parse, checksum, HMAC, cache, checks)
  against the raw HMAC-SHA256 check.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

from bench.inprocess import register

_ISSUER = "https://auth.example.com"
_AUDIENCE = "https://api.example.com"


_KEYS: dict[str, object] = {}


def _key(alg: str) -> object:
    """One signing key per algorithm, as Tokensmith makes them (RS256 keys are 3072-bit), shared
    by a guard scenario and the raw verify it is read against: the same key on both sides."""
    from tokensmith.jose.keys import generate_signing_key

    if alg not in _KEYS:
        _KEYS[alg] = generate_signing_key(alg)
    return _KEYS[alg]


def _raw_verify(alg: str) -> Callable[[], object]:
    """``cryptography``'s own verify of one of the tokens, with the key the guard uses."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

    from tokensmith.core.secrets import b64url_decode

    tokens, _ = _tokens(alg, 1)
    signing_input, _, signature_b64 = tokens[0].rpartition(".")
    data, signature = signing_input.encode(), b64url_decode(signature_b64)
    public = _key(alg).key.public_key  # type: ignore[attr-defined]  # joserfc: the cryptography key
    if alg == "ES256":
        der = utils.encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        return lambda: public.verify(der, data, ec.ECDSA(hashes.SHA256()))
    if alg == "RS256":
        return lambda: public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    return lambda: public.verify(signature, data)


@register("raw_verify_es256_same_key", group="baseline")
def _raw_es256() -> Callable[[], object]:
    return _raw_verify("ES256")


@register("raw_verify_rs256_3072_same_key", group="baseline")
def _raw_rs256() -> Callable[[], object]:
    return _raw_verify("RS256")


@register("raw_verify_eddsa_same_key", group="baseline")
def _raw_eddsa() -> Callable[[], object]:
    return _raw_verify("EdDSA")


def _tokens(alg: str, count: int) -> tuple[list[str], object]:
    """``count`` distinct access tokens signed with the algorithm's key, and a validator."""
    from tokensmith.guard import JwtValidator, StaticKeys, pin
    from tokensmith.jose.jws import sign_jwt
    from tokensmith.jose.keys import SigningKey, verification_key_from_jwk

    key = _key(alg)
    assert isinstance(key, SigningKey)
    now = int(time.time())
    tokens = [
        sign_jwt(
            key,
            {
                "iss": _ISSUER,
                "sub": f"user-{n}",
                "aud": _AUDIENCE,
                "exp": now + 3600,
                "iat": now,
                "jti": f"jti-{n}",
                "client_id": "bench",
                "scope": "api:read api:write",
            },
            typ="at+jwt",
        )
        for n in range(count)
    ]
    keys = StaticKeys([pin(verification_key_from_jwk(key.public_jwk()))])
    # cache_entries=1: each new token evicts the last, so first sight is never a cache hit.
    validator = JwtValidator(keys, issuer=_ISSUER, audiences=[_AUDIENCE], cache_entries=1)
    return tokens, validator


def _first_sight(alg: str) -> Callable[[], object]:
    tokens, validator = _tokens(alg, 4096)
    cycle = itertools.cycle(tokens)
    validate = validator.validate  # type: ignore[attr-defined]
    return lambda: validate(next(cycle))


@register("guard_first_sight_es256", baseline="raw_verify_es256_same_key")
def _guard_es256() -> Callable[[], object]:
    return _first_sight("ES256")


@register("guard_first_sight_rs256", baseline="raw_verify_rs256_3072_same_key")
def _guard_rs256() -> Callable[[], object]:
    return _first_sight("RS256")


@register("guard_first_sight_eddsa", baseline="raw_verify_eddsa_same_key")
def _guard_eddsa() -> Callable[[], object]:
    return _first_sight("EdDSA")


@register("guard_cached_es256", baseline="raw_verify_es256_same_key")
def _guard_cached() -> Callable[[], object]:
    from tokensmith.guard import JwtValidator

    tokens, validator = _tokens("ES256", 1)
    assert isinstance(validator, JwtValidator)
    fresh = JwtValidator(validator._keys, issuer=_ISSUER, audiences=[_AUDIENCE])
    fresh.validate(tokens[0])
    return lambda: fresh.validate(tokens[0])


@register("api_key_verify_in_process", baseline="raw_hmac_sha256")
def _api_key() -> Callable[[], object]:
    """One key verified again and again: the steady state of a busy key (cache hit, 1 s bound)."""
    from tokensmith.apikeys.format import generate_api_key
    from tokensmith.apikeys.records import ApiKeyRecord
    from tokensmith.apikeys.verifier import ApiKeyVerifier
    from tokensmith.core.clock import SystemClock
    from tokensmith.core.secrets import keyed_hash

    pepper = b"p" * 32
    key = generate_api_key("live")
    record = ApiKeyRecord(
        key.key_id, "bench", "team", keyed_hash(pepper, key.text), "api:read", int(time.time())
    )

    class Store:  # the lookup a cache miss makes; a hit never calls it
        async def get(self, key_id: str) -> ApiKeyRecord | None:
            return record if key_id == record.key_id else None

    verifier = ApiKeyVerifier(Store(), pepper, SystemClock())  # type: ignore[arg-type]
    verify = verifier.verify
    asyncio.run(verify(key.text))  # the first call reads the store and fills the cache

    def once() -> object:
        # The coroutine completes without suspending on a cache hit; drive it without a loop turn.
        coroutine = verify(key.text)
        try:
            coroutine.send(None)
        except StopIteration as done:
            return done.value
        raise RuntimeError("the verifier waited on I/O")

    return once
