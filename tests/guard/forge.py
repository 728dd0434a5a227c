"""Hand-made JWS tokens: valid ones and every malformed or hostile shape of SECURITY.md 1-15."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256

from tokensmith.jose.keys import SigningKey, generate_signing_key

ISSUER = "https://issuer.test"
AUDIENCE = "https://api.test"


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def seg(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")))


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "jti": f"jti-{time.perf_counter_ns()}",
        "client_id": "client-1",
        "scope": "orders:read",
    }
    for name, value in overrides.items():
        if value is _DROP:
            base.pop(name, None)
        else:
            base[name] = value
    return base


_DROP = object()
DROP: Any = _DROP


def signature(key: SigningKey, signing_input: bytes) -> bytes:
    raw = key.key.raw_value
    if isinstance(raw, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(raw.sign(signing_input, ec.ECDSA(SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if key.alg == "RS256":
        return raw.sign(signing_input, padding.PKCS1v15(), SHA256())  # type: ignore[union-attr,call-arg]
    return raw.sign(signing_input)  # type: ignore[union-attr,call-arg]


def sign(key: SigningKey, body: dict[str, Any], **header: Any) -> str:
    head = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt", **header}
    head = {k: v for k, v in head.items() if v is not _DROP}
    signing_input = f"{seg(head)}.{seg(body)}"
    return f"{signing_input}.{b64(signature(key, signing_input.encode()))}"


def hs256(secret: bytes, head: dict[str, Any], body: dict[str, Any]) -> str:
    signing_input = f"{seg(head)}.{seg(body)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def public_forms(key: SigningKey) -> list[bytes]:
    """The public key as an attacker would feed it to HMAC: PEM, DER, JWK JSON."""
    public = key.key.raw_value.public_key()  # type: ignore[union-attr]
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return [pem, pem.strip(), der, json.dumps(key.public_jwk()).encode()]


def new_key(alg: str = "ES256") -> SigningKey:
    return generate_signing_key(alg)


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def respellings(segment: str) -> list[str]:
    """Every other spelling of the same bytes: the last character with its unused low bits set
    (15 for a segment of 4k+2 characters, 3 for 4k+3, none for 4k)."""
    unused = {2: 4, 3: 2}.get(len(segment) % 4, 0)
    if not unused:
        return []
    value = _B64URL.index(segment[-1])
    base = value & ~((1 << unused) - 1)
    return [segment[:-1] + _B64URL[base | low] for low in range(1, 1 << unused)]


def lenient_b64decode(segment: str) -> bytes:
    """What a decoder that ignores unused bits reads (Python's, OpenSSL's, most libraries')."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def with_loose_tails(key: SigningKey, header_pad: str = "x-pad") -> str:
    """A valid token whose header and payload have unused bits (lengths 4k+2 or 4k+3); the
    signature has them when its length allows (ES256 and Ed25519: 64 bytes, 86 characters).
    The header is lengthened with ``header_pad`` (a strict verifier refuses unknown names)."""
    for pad in range(8):
        for extra in range(8):
            token = sign(key, claims(pad="p" * pad), **{header_pad: "h" * (extra + 1)})
            if all(len(part) % 4 in (2, 3) for part in token.split(".")[:2]):
                return token
    raise AssertionError("no padding gives every segment a loose tail")
