"""Signing keys: generation, serialisation, and the public JWK a verifier needs (RFC 7517)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from joserfc.jwk import ECKey, OKPKey, RSAKey

from tokensmith.core.secrets import b64url_decode
from tokensmith.jose.algorithms import key_type_for
from tokensmith.jose.signer import CompactSigner

__all__ = [
    "AsymmetricKey",
    "SigningKey",
    "VerificationKey",
    "generate_signing_key",
    "load_private_key",
    "verification_key_from_jwk",
]

AsymmetricKey = ECKey | OKPKey | RSAKey

# RFC 7518/8037 public members per key type; anything else in a JWK is ignored on import.
_PUBLIC_MEMBERS = {"EC": ("crv", "x", "y"), "OKP": ("crv", "x"), "RSA": ("n", "e")}
_MIN_RSA_BITS = 2048
_MAX_RSA_BITS = 8192


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    key: AsymmetricKey
    # Built on first use, then kept with the key: its header segments are encoded once.
    _signer: CompactSigner | None = field(default=None, init=False, repr=False, compare=False)

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r}, alg={self.alg!r})"

    @property
    def signer(self) -> CompactSigner:
        signer = self._signer
        if signer is None:
            signer = CompactSigner(self.kid, self.alg, self.key.private_key)
            object.__setattr__(self, "_signer", signer)  # frozen: a cache, not a change
        return signer

    def private_pem(self) -> bytes:
        return self.key.as_pem(private=True)

    def public_jwk(self) -> dict[str, Any]:
        return public_jwk(self.key, self.kid, self.alg)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key pinned to exactly one algorithm."""

    kid: str
    alg: str
    key: AsymmetricKey


def generate_signing_key(alg: str) -> SigningKey:
    kty, param = key_type_for(alg)
    key: AsymmetricKey
    if kty == "EC":
        key = ECKey.generate_key(str(param))
    elif kty == "OKP":
        key = OKPKey.generate_key("Ed25519")  # the only OKP curve in ALGORITHMS
    else:
        key = RSAKey.generate_key(int(param))
    # RFC 7638 thumbprint: stable, derived from the key, and says nothing secret.
    return SigningKey(kid=key.thumbprint(), alg=alg, key=key)


def load_private_key(kid: str, alg: str, pem: bytes) -> SigningKey:
    kty, _ = key_type_for(alg)
    key: AsymmetricKey
    if kty == "EC":
        key = ECKey.import_key(pem)
    elif kty == "OKP":
        key = OKPKey.import_key(pem)
    else:
        key = RSAKey.import_key(pem)
    return SigningKey(kid=kid, alg=alg, key=key)


def public_jwk(key: AsymmetricKey, kid: str, alg: str) -> dict[str, Any]:
    jwk = {name: value for name, value in key.as_dict(private=False).items() if name != "kid"}
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


def verification_key_from_jwk(jwk: dict[str, Any]) -> VerificationKey:
    """Import a published JWK; refuse one that does not pin a supported alg to its key type."""
    alg, kid, kty = jwk.get("alg"), jwk.get("kid"), jwk.get("kty")
    if not isinstance(alg, str) or not isinstance(kid, str) or not kid:
        raise ValueError("a verification key needs 'kid' and 'alg'")
    expected_kty, param = key_type_for(alg)
    if kty != expected_kty or jwk.get("use", "sig") != "sig":
        raise ValueError(f"key {kid!r} is not a {alg} signing key")
    members = {"kty": kty, **{m: jwk[m] for m in _PUBLIC_MEMBERS[kty] if m in jwk}}
    key: AsymmetricKey
    if kty == "EC":
        key = ECKey.import_key(members)
        if key.curve_name != param:
            raise ValueError(f"key {kid!r} is not on curve {param}")
    elif kty == "OKP":
        key = OKPKey.import_key(members)
        if key.curve_name != param:
            raise ValueError(f"key {kid!r} is not an {param} key")
    else:
        bits = _rsa_modulus_bits(members.get("n"))
        if not _MIN_RSA_BITS <= bits <= _MAX_RSA_BITS:
            raise ValueError(f"key {kid!r} has an RSA size of {bits} bits")
        key = RSAKey.import_key(members)
    return VerificationKey(kid=kid, alg=alg, key=key)


def _rsa_modulus_bits(n: object) -> int:
    """The size of an RSA modulus, measured before any library parses the key."""
    if not isinstance(n, str) or len(n) > 2 * _MAX_RSA_BITS // 6:
        return 0 if not isinstance(n, str) else _MAX_RSA_BITS + 1
    try:
        return int.from_bytes(b64url_decode(n), "big").bit_length()
    except ValueError:
        return 0
