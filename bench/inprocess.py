"""In-process micro-benchmarks: a registry, and the raw-cryptography baselines they compare to.

A scenario is a ``setup`` function that returns the zero-argument callable to time. Later
scenarios (guard validation, API-key verification) register themselves the same way and are
read against the raw rate of the primitive they use:

    @register("guard_es256", group="tokensmith", baseline="raw_es256_verify")
    def _guard() -> Callable[[], object]:
        guard = ...
        return lambda: guard.validate(token)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

__all__ = ["REGISTRY", "MicroBench", "measure", "register", "run_all"]

Setup = Callable[[], Callable[[], object]]


@dataclass(frozen=True, slots=True)
class MicroBench:
    name: str
    group: str  # "baseline" (a bare primitive) or "tokensmith" (our code path)
    setup: Setup
    baseline: str | None = None  # the raw primitive this one should be read against


REGISTRY: dict[str, MicroBench] = {}


def register(
    name: str, *, group: str = "tokensmith", baseline: str | None = None
) -> Callable[[Setup], Setup]:
    def add(setup: Setup) -> Setup:
        REGISTRY[name] = MicroBench(name, group, setup, baseline)
        return setup

    return add


def measure(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second, timed in batches so the clock is read rarely."""
    batch, calls = 64, 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - started)


def run_all(*, rounds: int = 3, seconds: float = 0.5) -> dict[str, float]:
    """Median calls per second of every registered scenario (one core, this process)."""
    calls: dict[str, Callable[[], object]] = {}
    for bench in REGISTRY.values():
        calls[bench.name] = bench.setup()
        calls[bench.name]()  # warm up, and fail early
    # Rounds interleave the scenarios, so a change in the machine's load hits each of them alike
    # and a ratio to its baseline holds even on a shared machine.
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            samples[name].append(measure(fn, seconds))
    return {name: statistics.median(found) for name, found in samples.items()}


# A typical JWS signing input: a header and the claims of an RFC 9068 access token.
_SIGNING_INPUT = (
    json.dumps({"alg": "ES256", "kid": "k" * 43, "typ": "at+jwt"})
    + "."
    + json.dumps(
        {
            "iss": "https://auth.example.com",
            "sub": "s" * 22,
            "aud": "https://api.example.com",
            "exp": 1_800_000_000,
            "iat": 1_799_999_700,
            "jti": "j" * 22,
            "client_id": "c" * 22,
            "scope": "api:read api:write",
        }
    )
).encode()


@register("raw_es256_verify", group="baseline")
def _es256() -> Callable[[], object]:
    key = ec.generate_private_key(ec.SECP256R1())
    signature, public = key.sign(_SIGNING_INPUT, ec.ECDSA(hashes.SHA256())), key.public_key()
    return lambda: public.verify(signature, _SIGNING_INPUT, ec.ECDSA(hashes.SHA256()))


@register("raw_rs256_verify", group="baseline")
def _rs256() -> Callable[[], object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pad = padding.PKCS1v15()
    signature, public = key.sign(_SIGNING_INPUT, pad, hashes.SHA256()), key.public_key()
    return lambda: public.verify(signature, _SIGNING_INPUT, pad, hashes.SHA256())


@register("raw_eddsa_verify", group="baseline")
def _eddsa() -> Callable[[], object]:
    key = ed25519.Ed25519PrivateKey.generate()
    signature, public = key.sign(_SIGNING_INPUT), key.public_key()
    return lambda: public.verify(signature, _SIGNING_INPUT)


@register("raw_es256_sign", group="baseline")
def _es256_sign() -> Callable[[], object]:
    """What the token endpoint pays per JWT with each algorithm Tokensmith offers."""
    key = ec.generate_private_key(ec.SECP256R1())
    return lambda: key.sign(_SIGNING_INPUT, ec.ECDSA(hashes.SHA256()))


@register("raw_rs256_sign", group="baseline")
def _rs256_sign() -> Callable[[], object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return lambda: key.sign(_SIGNING_INPUT, padding.PKCS1v15(), hashes.SHA256())


@register("raw_eddsa_sign", group="baseline")
def _eddsa_sign() -> Callable[[], object]:
    key = ed25519.Ed25519PrivateKey.generate()
    return lambda: key.sign(_SIGNING_INPUT)


@register("raw_hmac_sha256", group="baseline")
def _hmac() -> Callable[[], object]:
    """An API-key or client-secret check: HMAC-SHA256 of 32 bytes, compared in constant time."""
    pepper, secret = os.urandom(32), os.urandom(32)
    expected = hmac.new(pepper, secret, hashlib.sha256).digest()
    return lambda: hmac.compare_digest(hmac.new(pepper, secret, hashlib.sha256).digest(), expected)


@register("tokensmith_verify_jwt_es256", baseline="raw_es256_verify")
def _verify_jwt() -> Callable[[], object]:
    """``jose.jws.verify_jwt`` on an ES256 access token: joserfc plus our header rules."""
    from tokensmith.jose.jws import sign_jwt, verify_jwt
    from tokensmith.jose.keys import generate_signing_key, verification_key_from_jwk

    signing = generate_signing_key("ES256")
    token = sign_jwt(signing, json.loads(_SIGNING_INPUT.split(b".", 1)[1]), typ="at+jwt")
    keys = {signing.kid: verification_key_from_jwk(signing.public_jwk())}
    return lambda: verify_jwt(token, keys)


if __name__ == "__main__":
    for name, rate in run_all().items():
        print(f"{name:<32} {rate:>12,.0f} /s")
