"""Encrypted JWTs (RFC 7516, RFC 7518 §4-5, RFC 7519 §5.2): one allowlist for every party.

The server encrypts ID tokens, userinfo responses and access tokens to a recipient's public key;
the guard and the client kit decrypt them. All of them go through this module, so all of them
accept the same algorithms: key management RSA-OAEP-256, ECDH-ES and ECDH-ES+A256KW, content
encryption A256GCM, nothing else (RFC 8725 §3.2). ``RSA1_5`` (Bleichenbacher), ``RSA-OAEP``
(SHA-1), ``dir`` and the shared-key wraps (``A*KW``, ``PBES2-*``) are refused at registration,
at start-up and on decryption alike, as are RSA keys under 2048 bits and curves outside
P-256/P-384/P-521/X25519 (RFC 8725 §3.4). joserfc does the cryptography.

What is encrypted is always a signed JWT (a nested JWT, ``cty: "JWT"``): encryption hides the
claims, the signature says who wrote them. Decryption hands back the inner JWS; the caller
verifies it as it would an unencrypted token.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jwe
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tokensmith.core.secrets import b64url_decode, b64url_json
from tokensmith.errors import TokensmithError

__all__ = [
    "CONTENT_ENCRYPTION",
    "DEFAULT_ENC",
    "KEY_MANAGEMENT",
    "DecryptionKey",
    "EncryptionKey",
    "InvalidEncryption",
    "decrypt_jwt",
    "decryption_key",
    "encrypt_jwt",
    "encryption_choice",
    "encryption_key",
    "find_encryption_key",
    "is_jwe",
]

KEY_MANAGEMENT: Final = ("RSA-OAEP-256", "ECDH-ES", "ECDH-ES+A256KW")
CONTENT_ENCRYPTION: Final = ("A256GCM",)
DEFAULT_ENC: Final = "A256GCM"  # OIDC Registration §2: the enc when only the alg is registered

AnyKey = ECKey | OKPKey | RSAKey
# alg -> the key types it works with, and for EC/OKP keys the curves we accept.
_KTY: Final[dict[str, tuple[str, ...]]] = {
    "RSA-OAEP-256": ("RSA",),
    "ECDH-ES": ("EC", "OKP"),
    "ECDH-ES+A256KW": ("EC", "OKP"),
}
_CURVES: Final = {"EC": frozenset({"P-256", "P-384", "P-521"}), "OKP": frozenset({"X25519"})}
_DEFAULT_ALG: Final = {"RSA": "RSA-OAEP-256", "EC": "ECDH-ES", "OKP": "ECDH-ES"}
_PUBLIC_MEMBERS: Final = {"EC": ("crv", "x", "y"), "OKP": ("crv", "x"), "RSA": ("n", "e")}
_PRIVATE_MEMBERS: Final = {
    "EC": ("d",),
    "OKP": ("d",),
    "RSA": ("d", "p", "q", "dp", "dq", "qi"),
}
_MIN_RSA_BITS = 2048
_MAX_RSA_BITS = 8192
MAX_JWE_CHARS = 16384
# Header members that would bring a key or an instruction from the sender; ``zip`` is refused
# because compressing before encrypting leaks the plaintext's content through its length.
_REFUSED_HEADERS: Final = frozenset(
    {"zip", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit", "p2s", "p2c", "b64"}
)
# What RSA-OAEP-256 and ECDH-ES(+A256KW) headers hold (RFC 7516 §4.1, RFC 7518 §4.6.1).
_ALLOWED_HEADERS: Final = frozenset({"alg", "enc", "cty", "typ", "kid", "epk", "apu", "apv"})
_REGISTRY = jwe.JWERegistry(algorithms=[*KEY_MANAGEMENT, *CONTENT_ENCRYPTION])


class InvalidEncryption(TokensmithError):
    """Not a JWE we accept, or not one our key opens; the message is safe to log."""


@dataclass(frozen=True, slots=True)
class EncryptionKey:
    """A recipient's public key, bound to the one key-management algorithm used with it."""

    alg: str
    key: AnyKey
    kid: str | None = None


@dataclass(frozen=True, slots=True)
class DecryptionKey:
    """A private key of ours; ``alg`` set when its JWK pinned one, else any alg fitting its type."""

    key: AnyKey
    kid: str | None = None
    alg: str | None = None

    def __repr__(self) -> str:
        return f"DecryptionKey(kid={self.kid!r}, alg={self.alg!r})"

    def fits(self, alg: str) -> bool:
        return (self.alg is None or self.alg == alg) and self.key.key_type in _KTY[alg]


def encryption_choice(alg: str | None, enc: str | None) -> tuple[str, str] | None:
    """The (alg, enc) pair a client or resource registered, checked; None for no encryption.

    OIDC Registration §2: ``enc`` without ``alg`` is an error, ``alg`` alone means A256GCM."""
    if alg is None:
        if enc is not None:
            raise ValueError("an encryption enc needs its alg")
        return None
    _check_alg(alg)
    enc = DEFAULT_ENC if enc is None else enc
    if enc not in CONTENT_ENCRYPTION:
        raise ValueError(f"content encryption {enc!r} is not supported (only A256GCM)")
    return alg, enc


def encryption_key(jwk: Mapping[str, Any], alg: str | None = None) -> EncryptionKey:
    """Import a recipient's public JWK for ``alg`` (default: the JWK's own, or its type's)."""
    kty = jwk.get("kty")
    if kty not in _PUBLIC_MEMBERS:
        raise ValueError("an encryption key is an RSA, EC or OKP (X25519) key")
    if any(m in jwk for m in _PRIVATE_MEMBERS[kty]) or "k" in jwk:
        raise ValueError("an encryption key must be a public key")
    if jwk.get("use", "enc") != "enc":
        raise ValueError("the key is not for encryption (its use is not enc)")
    own = jwk.get("alg")
    if own is not None and alg is not None and own != alg:
        raise ValueError(f"the key is bound to {own!r}, not {alg!r}")
    chosen = alg or own or _DEFAULT_ALG[kty]
    if not isinstance(chosen, str):
        raise ValueError("the key's alg is not a string")
    _check_alg(chosen)
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > 200):
        raise ValueError("the key's kid is not a short string")
    members = {"kty": kty, **{m: jwk[m] for m in _PUBLIC_MEMBERS[kty] if m in jwk}}
    return EncryptionKey(chosen, _checked(_import(members), chosen), kid)


def find_encryption_key(jwks: Mapping[str, Any] | None, alg: str) -> EncryptionKey | None:
    """The first key of a registered JWKS usable for ``alg``: marked ``use: enc``, or unmarked
    and fitting; a signing key (``use: sig``, or an ``alg`` that signs) is never chosen."""
    for jwk in (jwks or {}).get("keys", ()):
        if not isinstance(jwk, Mapping) or jwk.get("kty") not in _KTY.get(alg, ()):
            continue
        if jwk.get("use", "enc") != "enc" or jwk.get("alg", alg) != alg:
            continue
        try:
            return encryption_key(jwk, alg)
        except ValueError:
            continue
    return None


def encrypt_jwt(signed: str, key: EncryptionKey, enc: str = DEFAULT_ENC) -> str:
    """The compact JWE of a signed JWT (RFC 7519 §5.2: ``cty: "JWT"``)."""
    if enc not in CONTENT_ENCRYPTION:
        raise ValueError(f"content encryption {enc!r} is not supported")
    header: dict[str, Any] = {"alg": key.alg, "enc": enc, "cty": "JWT"}
    if key.kid is not None:
        header["kid"] = key.kid
    return jwe.encrypt_compact(header, signed, key.key, registry=_REGISTRY)


def decryption_key(source: Mapping[str, Any] | str | bytes) -> DecryptionKey:
    """A private key from a JWK (dict) or PEM text; ValueError saying what is wrong."""
    if isinstance(source, Mapping):
        kty, alg, kid = source.get("kty"), source.get("alg"), source.get("kid")
        if kty not in _PUBLIC_MEMBERS or "d" not in source:
            raise ValueError("a decryption key is a private RSA, EC or OKP JWK (with 'd')")
        if source.get("use", "enc") != "enc":
            raise ValueError("the key is not for encryption (its use is not enc)")
        if alg is not None:
            _check_alg(alg)
        if kid is not None and not isinstance(kid, str):
            raise ValueError("the key's kid is not a string")
        key = _import(dict(source))
    else:
        alg, kid = None, None
        key = _import(source)
        if not key.is_private:
            raise ValueError("a decryption key must be a private key")
    checked = _checked(key, alg or _DEFAULT_ALG[key.key_type])
    return DecryptionKey(checked, kid or checked.thumbprint(), alg)


def is_jwe(token: str) -> bool:
    """A compact JWE has five segments (RFC 7516 §7.1); a JWS three."""
    return token.count(".") == 4


def decrypt_jwt(token: str, keys: Sequence[DecryptionKey]) -> str:
    """The signed JWT inside a compact JWE; InvalidEncryption for anything else."""
    if len(token) > MAX_JWE_CHARS:
        raise InvalidEncryption("the encrypted token is too large")
    header = _header(token)
    alg, enc = header.get("alg"), header.get("enc")
    if alg not in KEY_MANAGEMENT or not isinstance(alg, str):
        raise InvalidEncryption("the token's key management algorithm is not accepted")
    if enc not in CONTENT_ENCRYPTION:
        raise InvalidEncryption("the token's content encryption is not accepted")
    cty = header.get("cty")
    if cty is not None and (not isinstance(cty, str) or cty.upper() != "JWT"):
        raise InvalidEncryption("the encrypted token does not hold a JWT")
    plaintext = _open(token, _candidates(header, alg, keys))
    try:
        inner = plaintext.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidEncryption("the encrypted token does not hold a signed JWT") from None
    if inner.count(".") != 2 or not all(inner.split(".")):
        # An unsigned JWT (alg none, empty signature), bare JSON claims, or another JWE inside.
        raise InvalidEncryption("the encrypted token does not hold a signed JWT")
    return inner


def _header(token: str) -> dict[str, Any]:
    segments = token.split(".")
    if len(segments) != 5 or not all(segments[i] for i in (0, 2, 3, 4)):
        raise InvalidEncryption("a JWE has five segments")
    try:
        for segment in segments[1:]:
            if segment:  # the encrypted key is empty for ECDH-ES (RFC 7518 §4.6)
                b64url_decode(segment)  # strict and canonical (SECURITY.md case 66)
        header = b64url_json(segments[0])
    except (ValueError, UnicodeDecodeError):
        raise InvalidEncryption("the encrypted token is not base64url") from None
    if not isinstance(header, dict):
        raise InvalidEncryption("the encrypted token's header is not a JSON object")
    refused = _REFUSED_HEADERS.intersection(header)
    if refused:
        raise InvalidEncryption(f"the encrypted token's header carries {sorted(refused)[0]!r}")
    unknown = set(header) - _ALLOWED_HEADERS
    if unknown:
        raise InvalidEncryption(f"the encrypted token's header carries {sorted(unknown)[0]!r}")
    return header


def _candidates(
    header: Mapping[str, Any], alg: str, keys: Iterable[DecryptionKey]
) -> list[DecryptionKey]:
    kid = header.get("kid")
    fitting = [k for k in keys if k.fits(alg) and (kid is None or k.kid == kid)]
    if not fitting:
        raise InvalidEncryption("no decryption key of ours fits the encrypted token")
    return fitting


def _open(token: str, keys: list[DecryptionKey]) -> bytes:
    for key in keys:
        try:
            plaintext = jwe.decrypt_compact(token, key.key, registry=_REGISTRY).plaintext
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        if plaintext is not None:
            return plaintext
    raise InvalidEncryption("the encrypted token does not open with our keys")


def _check_alg(alg: object) -> None:
    if alg not in KEY_MANAGEMENT:
        raise ValueError(
            f"key management algorithm {alg!r} is not supported "
            f"(use one of {', '.join(KEY_MANAGEMENT)})"
        )


def _import(source: Mapping[str, Any] | str | bytes) -> AnyKey:
    try:
        if isinstance(source, Mapping):
            kty = source.get("kty")
            if kty == "RSA":
                _rsa_size_ok(source.get("n"))
                return RSAKey.import_key(dict(source))
            if kty == "EC":
                return ECKey.import_key(dict(source))
            return OKPKey.import_key(dict(source))
        with warnings.catch_warnings():
            # A PEM is measured after import (``_checked``); joserfc's warning says less.
            warnings.simplefilter("ignore", SecurityWarning)
            for cls in (RSAKey, ECKey, OKPKey):
                try:
                    return cls.import_key(source)
                except (JoseError, ValueError, TypeError):
                    continue
    except (JoseError, TypeError, KeyError) as exc:
        raise ValueError(f"the key cannot be read ({type(exc).__name__})") from None
    raise ValueError("the key is not an RSA, EC or X25519 key")


def _checked(key: AnyKey, alg: str) -> AnyKey:
    """The key if it fits ``alg`` and our size and curve floors."""
    if key.key_type not in _KTY[alg]:
        raise ValueError(f"a {key.key_type} key cannot be used with {alg}")
    if isinstance(key, RSAKey):
        bits = int(key.raw_value.key_size)
        if not _MIN_RSA_BITS <= bits <= _MAX_RSA_BITS:
            raise ValueError(f"an RSA encryption key has 2048 to 8192 bits, not {bits}")
    elif key.curve_name not in _CURVES[key.key_type]:
        raise ValueError(f"curve {key.curve_name} is not accepted for encryption")
    return key


def _rsa_size_ok(n: object) -> None:
    """Measure the modulus before any library parses it: a huge one costs (SECURITY.md case
    43), a small one is refused here rather than warned about by joserfc."""
    bits = 0
    if isinstance(n, str) and len(n) <= 2 * _MAX_RSA_BITS // 6:
        try:
            bits = int.from_bytes(b64url_decode(n), "big").bit_length()
        except ValueError:
            bits = 0
    if not _MIN_RSA_BITS <= bits <= _MAX_RSA_BITS:
        raise ValueError("an RSA encryption key has 2048 to 8192 bits")
