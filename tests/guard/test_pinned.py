"""guard/pinned.py: joserfc's algorithm checks every signature, on a key pinned once."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.errors import UnsupportedKeyOperationError
from joserfc.jwk import ECKey

from tests.guard.forge import claims, sign
from tokensmith.core.secrets import b64url_decode
from tokensmith.guard import pin
from tokensmith.guard.pinned import _VerifyingKey
from tokensmith.jose.keys import VerificationKey, generate_signing_key, verification_key_from_jwk

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ALGS = ["ES256", "RS256", "Ed25519", "EdDSA"]


def signed(alg: str) -> tuple[Any, bytes, bytes]:
    key = generate_signing_key(alg)
    token = sign(key, claims())
    signing_input, _, sig = token.rpartition(".")
    return (
        pin(verification_key_from_jwk(key.public_jwk())),
        signing_input.encode(),
        b64url_decode(sig),
    )


@pytest.mark.parametrize("alg", ALGS)
def test_a_genuine_signature_passes_and_any_change_fails(alg: str) -> None:
    key, data, signature = signed(alg)
    assert key.verify(data, signature)
    assert not key.verify(data + b"x", signature)
    assert not key.verify(data, bytes([signature[0] ^ 1]) + signature[1:])


@pytest.mark.parametrize("alg", ALGS)
def test_a_signature_of_the_wrong_length_fails(alg: str) -> None:
    key, data, signature = signed(alg)
    for wrong in (b"", signature[:-1], signature + b"\x00", signature * 2):
        assert not key.verify(data, wrong)


@pytest.mark.parametrize(
    ("r", "s"), [(0, 0), (0, 1), (1, 0), (P256_ORDER, 1), (1, P256_ORDER), (2**256 - 1, 1)]
)
def test_es256_r_and_s_out_of_range_fail(r: int, s: int) -> None:
    """CVE-2022-21449: zero (or out-of-range) R and S never verify."""
    key, data, _ = signed("ES256")
    assert not key.verify(data, r.to_bytes(32, "big") + s.to_bytes(32, "big"))


@pytest.mark.parametrize(("alg", "other"), [("ES256", "RS256"), ("RS256", "ES256"),
                                            ("EdDSA", "ES256"), ("Ed25519", "RS256")])  # fmt: skip
def test_a_key_of_another_type_is_not_pinned(alg: str, other: str) -> None:
    key = generate_signing_key(other).public_jwk()
    imported = verification_key_from_jwk(key).key
    with pytest.raises(ValueError, match="cannot verify"):
        pin(VerificationKey("k", alg, imported))


@pytest.mark.parametrize("alg", ["HS256", "ES384", "PS256", "none", "RS512"])
def test_algorithms_outside_the_allowlist_are_not_pinned(alg: str) -> None:
    key = verification_key_from_jwk(generate_signing_key("ES256").public_jwk())
    with pytest.raises(ValueError, match="cannot verify"):
        pin(VerificationKey(key.kid, alg, key.key))


@pytest.mark.parametrize(
    "extra", [{"key_ops": ["encrypt"]}, {"use": "enc"}, {"alg": "ES384"}, {"crv": "P-384"}]
)
def test_joserfc_refuses_a_key_not_meant_for_the_algorithm(extra: dict[str, Any]) -> None:
    jwk = generate_signing_key("ES256").public_jwk()
    members = {name: jwk[name] for name in ("kty", "crv", "x", "y")}
    try:
        imported = ECKey.import_key({**members, **extra})
    except Exception:  # joserfc refused it already on import
        return
    with pytest.raises(ValueError, match="cannot verify"):
        pin(VerificationKey("k", "ES256", imported))


def test_the_kept_key_answers_verify_only() -> None:
    kept = _VerifyingKey(object(), 256)
    for operation in ("sign", "encrypt", "decrypt", "wrapKey", "deriveKey"):
        with pytest.raises(UnsupportedKeyOperationError):
            kept.get_op_key(operation)
