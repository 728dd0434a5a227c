"""The signing algorithms Tokensmith issues with, and the key type each one is bound to.

RFC 8725 §3.1: the algorithm is a property of the key, never of the token. Every key we publish
carries its ``alg``, and verification uses that value, not the token header's.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["ALGORITHMS", "DEFAULT_ALGORITHM", "SigningAlgorithm", "key_type_for"]

SigningAlgorithm = Literal["ES256", "Ed25519", "EdDSA", "RS256"]

DEFAULT_ALGORITHM: Final[SigningAlgorithm] = "ES256"

# alg -> (JWK kty, curve or RSA size). "Ed25519" is the fully specified name from RFC 9864;
# "EdDSA" is the older polymorphic name, kept for peers that know only it (always Ed25519 here).
ALGORITHMS: Final[dict[str, tuple[str, str | int]]] = {
    "ES256": ("EC", "P-256"),
    "Ed25519": ("OKP", "Ed25519"),
    "EdDSA": ("OKP", "Ed25519"),
    "RS256": ("RSA", 3072),
}


def key_type_for(alg: str) -> tuple[str, str | int]:
    try:
        return ALGORITHMS[alg]
    except KeyError:
        raise ValueError(f"unsupported signing algorithm {alg!r}") from None
