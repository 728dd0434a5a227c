"""jose/: keys and JWS verification rules (SECURITY.md cases 1-5, 7-11 for tokens we parse)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt as jose_jwt

from tokensmith.jose.jws import InvalidSignature, sign_jwt, verify_jwt
from tokensmith.jose.keys import (
    VerificationKey,
    generate_signing_key,
    verification_key_from_jwk,
)

ALGS = ["ES256", "Ed25519", "EdDSA", "RS256"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)]
    )


@pytest.fixture(scope="module")
def es256() -> Any:
    return generate_signing_key("ES256")


def keys_for(key: Any) -> dict[str, VerificationKey]:
    return {key.kid: verification_key_from_jwk(key.public_jwk())}


@pytest.mark.parametrize("alg", ALGS)
def test_round_trip_and_third_party_verification(alg: str) -> None:
    key = generate_signing_key(alg)
    token = sign_jwt(key, {"sub": "x"}, typ="at+jwt")
    header, claims = verify_jwt(token, keys_for(key))
    assert header == {"alg": alg, "kid": key.kid, "typ": "at+jwt"} and claims == {"sub": "x"}
    jwk = key.public_jwk()
    assert jwk["alg"] == alg and jwk["use"] == "sig" and "d" not in jwk
    if alg in ("ES256", "RS256", "EdDSA"):  # PyJWT knows these names
        public = pyjwt.PyJWK(jwk).key
        assert pyjwt.decode(token, public, algorithms=[alg])["sub"] == "x"


def test_rsa_keys_are_3072_bits() -> None:
    key = generate_signing_key("RS256")
    assert key.key.raw_value.key_size == 3072  # type: ignore[union-attr]


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_any_spelling(es256: Any, alg: str) -> None:
    token = forge({"alg": alg, "kid": es256.kid}, {"sub": "x"})
    with pytest.raises(InvalidSignature):
        verify_jwt(token, keys_for(es256))


@pytest.mark.parametrize("form", ["pem", "der", "jwk"])
def test_hs256_signed_with_our_public_key(es256: Any, form: str) -> None:
    public = es256.key.raw_value.public_key()
    secret = {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk": json.dumps(es256.public_jwk()).encode(),
    }[form]
    token = hs256(secret, {"alg": "HS256", "kid": es256.kid}, {"sub": "x"})
    with pytest.raises(InvalidSignature, match="algorithm"):
        verify_jwt(token, keys_for(es256))


@pytest.mark.parametrize("secret", [b"", b"secret", b"password"])
def test_hs256_with_common_secret(es256: Any, secret: bytes) -> None:
    token = hs256(secret, {"alg": "HS256", "kid": es256.kid}, {"sub": "x"})
    with pytest.raises(InvalidSignature):
        verify_jwt(token, keys_for(es256))


def test_empty_signature_segment(es256: Any) -> None:
    good = sign_jwt(es256, {"sub": "x"})
    with pytest.raises(InvalidSignature):
        verify_jwt(good.rsplit(".", 1)[0] + ".", keys_for(es256))


@pytest.mark.parametrize("name", ["jwk", "jku", "x5u", "x5c"])
def test_key_carrying_headers_are_refused(es256: Any, name: str) -> None:
    attacker = generate_signing_key("ES256")
    values = {
        "jwk": attacker.public_jwk(),
        "jku": "https://attacker.example/keys",
        "x5u": "https://attacker.example/cert",
        "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
    }
    private = attacker.key.raw_value  # signed by the attacker's key, named by our kid
    headers = {"kid": es256.kid, name: values[name]}
    token = pyjwt.encode({"sub": "x"}, private, algorithm="ES256", headers=headers)
    with pytest.raises(InvalidSignature, match=name):
        verify_jwt(token, keys_for(es256))


@pytest.mark.parametrize("kid", ["../../dev/null", "x' OR '1'='1", "", "\x00", 7, None])
def test_hostile_kids_are_unknown(es256: Any, kid: Any) -> None:
    token = forge({"alg": "ES256", "kid": kid}, {"sub": "x"}, b"\0" * 64)
    with pytest.raises(InvalidSignature, match="unknown key id"):
        verify_jwt(token, keys_for(es256))


@pytest.mark.parametrize("signature", [b"\0" * 64, b"\0" * 63, b"\0" * 65, b"\0" * 72])
def test_zero_or_wrong_length_es256_signature(es256: Any, signature: bytes) -> None:
    token = forge({"alg": "ES256", "kid": es256.kid}, {"sub": "x"}, signature)
    with pytest.raises(InvalidSignature):
        verify_jwt(token, keys_for(es256))


def test_header_alg_differs_from_key(es256: Any) -> None:
    other = generate_signing_key("RS256")
    token = jose_jwt.encode(
        {"alg": "RS256", "kid": es256.kid}, {"sub": "x"}, other.key, algorithms=["RS256"]
    )
    with pytest.raises(InvalidSignature, match="algorithm"):
        verify_jwt(token, keys_for(es256))


@pytest.mark.parametrize(
    "extra", [{"crit": ["exp"]}, {"crit": "bad"}, {"b64": False, "crit": ["b64"]}]
)
def test_crit_and_b64_are_refused(es256: Any, extra: dict[str, Any]) -> None:
    token = forge({"alg": "ES256", "kid": es256.kid, **extra}, {"sub": "x"}, b"\1" * 64)
    with pytest.raises(InvalidSignature):
        verify_jwt(token, keys_for(es256))


@pytest.mark.parametrize("segments", [2, 4, 5])
def test_wrong_segment_counts(es256: Any, segments: int) -> None:
    good = sign_jwt(es256, {"sub": "x"}).split(".")
    token = ".".join((good * 2)[:segments])
    with pytest.raises(InvalidSignature):
        verify_jwt(token, keys_for(es256))


def test_jwe_wrapping_is_refused(es256: Any) -> None:
    token = forge({"alg": "dir", "enc": "A256GCM", "kid": es256.kid}, {"sub": "x"}, b"x")
    with pytest.raises(InvalidSignature):
        verify_jwt(token + ".x.y", keys_for(es256))
    with pytest.raises(InvalidSignature):
        verify_jwt(token, keys_for(es256))


def test_oversized_token_is_refused_before_parsing(es256: Any) -> None:
    with pytest.raises(InvalidSignature, match="too large"):
        verify_jwt("a" * 9000, keys_for(es256))


@pytest.mark.parametrize("garbage", ["", "...", "a.b.c", "!!!.???.###", "e30.e30.e30"])
def test_garbage(es256: Any, garbage: str) -> None:
    with pytest.raises(InvalidSignature):
        verify_jwt(garbage, keys_for(es256))


def test_tampered_claims(es256: Any) -> None:
    header, _, signature = sign_jwt(es256, {"sub": "x"}).split(".")
    payload = b64(b'{"sub":"admin"}')
    with pytest.raises(InvalidSignature):
        verify_jwt(f"{header}.{payload}.{signature}", keys_for(es256))


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "kid": "k", "crv": "P-256", "x": "AA", "y": "AA"},  # no alg
        {"kty": "oct", "kid": "k", "alg": "HS256", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": "k", "alg": "ES256", "n": "AQAB", "e": "AQAB"},
        {
            "kty": "EC",
            "kid": "k",
            "alg": "ES256",
            "use": "enc",
            "crv": "P-256",
            "x": "AA",
            "y": "AA",
        },
    ],
)
def test_jwks_entries_that_do_not_pin_an_algorithm(jwk: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        verification_key_from_jwk(jwk)


def test_small_rsa_key_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(small))
    with pytest.raises(ValueError, match="RSA size"):
        verification_key_from_jwk({**jwk, "kid": "k", "alg": "RS256"})
