"""A public key bound to one algorithm, with the raw signature check of RFC 7518 §3.

joserfc imports and validates the JWK (``tokensmith.jose.keys``); the per-request verify calls
``cryptography`` directly on the already-imported key. joserfc's full decode adds 30-40 µs of
parsing per token (docs/guard.md, "Speed"), which this path does once, itself, in the validator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256

from tokensmith.jose.keys import VerificationKey

__all__ = ["PinnedKey", "pin"]

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True, slots=True)
class PinnedKey:
    kid: str
    alg: str
    verify: Callable[[bytes, bytes], bool]  # (signing input, signature) -> valid


def pin(key: VerificationKey) -> PinnedKey:
    """Bind the key's own algorithm; the token header never chooses it (RFC 8725 §3.1)."""
    raw = key.key.raw_value
    if key.alg == "ES256" and isinstance(raw, ec.EllipticCurvePublicKey):
        return PinnedKey(key.kid, key.alg, _es256(raw))
    if key.alg == "RS256" and isinstance(raw, rsa.RSAPublicKey):
        return PinnedKey(key.kid, key.alg, _rs256(raw))
    if key.alg in ("Ed25519", "EdDSA") and isinstance(raw, ed25519.Ed25519PublicKey):
        return PinnedKey(key.kid, key.alg, _ed25519(raw))
    raise ValueError(f"key {key.kid!r} cannot verify {key.alg}")


def _es256(public: ec.EllipticCurvePublicKey) -> Callable[[bytes, bytes], bool]:
    algorithm = ec.ECDSA(SHA256())

    def verify(data: bytes, signature: bytes) -> bool:
        # RFC 7518 §3.4: exactly R || S, 32 bytes each. Zero or out-of-range values are refused
        # here as well as by OpenSSL (CVE-2022-21449 accepted r = s = 0).
        if len(signature) != 64:
            return False
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
            return False
        try:
            public.verify(encode_dss_signature(r, s), data, algorithm)
        except InvalidSignature:
            return False
        return True

    return verify


def _rs256(public: rsa.RSAPublicKey) -> Callable[[bytes, bytes], bool]:
    size = (public.key_size + 7) // 8
    pkcs1, sha256 = padding.PKCS1v15(), SHA256()

    def verify(data: bytes, signature: bytes) -> bool:
        if len(signature) != size:
            return False
        try:
            public.verify(signature, data, pkcs1, sha256)
        except InvalidSignature:
            return False
        return True

    return verify


def _ed25519(public: ed25519.Ed25519PublicKey) -> Callable[[bytes, bytes], bool]:
    def verify(data: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    return verify
