"""A public key bound to one algorithm, checked by joserfc's own algorithm (RFC 7518 §3).

joserfc imports and validates the JWK (``tokensmith.jose.keys``) and checks every signature: the
per-request call is its algorithm model's ``verify``, found once here when the key is pinned.
What joserfc's full ``jwt.decode`` adds around it (splitting, decoding and re-reading the header
and claims, 30-40 µs a token) the validator does once, itself; what the model asks of the key at
each call (``get_op_key``: the ``key_ops`` allowed, public or private, the native key) depends
on the key alone, so it is asked once here and the answer kept (``_VerifyingKey``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.errors import JoseError, UnsupportedKeyOperationError
from joserfc.jws import JWSRegistry

from tokensmith.jose.keys import VerificationKey

__all__ = ["PinnedKey", "pin"]

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# Our allowlist (jose/algorithms.py): alg -> the public key type it needs.
_PINNABLE: dict[str, type[object]] = {
    "ES256": ec.EllipticCurvePublicKey,
    "RS256": rsa.RSAPublicKey,
    "Ed25519": ed25519.Ed25519PublicKey,
    "EdDSA": ed25519.Ed25519PublicKey,  # the old name; always Ed25519 here, never Ed448
}


@dataclass(frozen=True, slots=True)
class PinnedKey:
    kid: str
    alg: str
    verify: Callable[[bytes, bytes], bool] = field(compare=False)  # (signing input, sig) -> valid
    # RFC 7638 thumbprint of the public key: two pins are equal only for the same key and alg,
    # so a key replaced under its kid is a change of the key set (jwks.py: on_change).
    thumbprint: str = ""


def pin(key: VerificationKey) -> PinnedKey:
    """Bind the key's own algorithm; the token header never chooses it (RFC 8725 §3.1)."""
    raw = key.key.raw_value
    if not isinstance(raw, _PINNABLE.get(key.alg, type(None))):
        raise ValueError(f"key {key.kid!r} cannot verify {key.alg}")
    model = JWSRegistry.algorithms[key.alg]
    try:
        model.check_key(key.key)  # joserfc's own rule: key type (and curve) fit the algorithm
        public = key.key.get_op_key("verify")  # a JWK whose key_ops leave out "verify": here
    except (JoseError, ValueError) as exc:
        raise ValueError(f"key {key.kid!r} cannot verify {key.alg}") from exc
    size = (raw.key_size + 7) // 8 if isinstance(raw, rsa.RSAPublicKey) else 64
    jwk: Any = _VerifyingKey(public, getattr(key.key, "curve_key_size", 0))  # joserfc's key, kept
    check = model.verify
    es256 = key.alg == "ES256"

    def verify(data: bytes, signature: bytes) -> bool:
        # RFC 7518 §3.3 the modulus' length, §3.4 R || S of 32 bytes each, RFC 8032 §5.1.6
        if len(signature) != size:
            return False
        if es256 and not _in_p256_range(signature):
            return False
        return check(data, signature, jwk)

    return PinnedKey(key.kid, key.alg, verify, key.key.thumbprint())


class _VerifyingKey:
    """What joserfc's algorithms read from a key when they verify, answered once at pin time."""

    __slots__ = ("_public", "curve_key_size")

    def __init__(self, public: object, curve_key_size: int) -> None:
        self._public = public
        self.curve_key_size = curve_key_size  # ESAlgorithm: the R and S length

    def get_op_key(self, operation: str) -> object:
        if operation != "verify":  # a public key, pinned to verify: nothing else is asked of it
            raise UnsupportedKeyOperationError(f"Unsupported key_op '{operation}'")
        return self._public


def _in_p256_range(signature: bytes) -> bool:
    # Zero or out-of-range R and S are refused here as well as by OpenSSL: CVE-2022-21449
    # (Java) accepted r = s = 0 for any message.
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    return 0 < r < _P256_ORDER and 0 < s < _P256_ORDER
