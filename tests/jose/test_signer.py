"""jose/signer.py: the server's own JWS, checked by joserfc and PyJWT, and byte for byte against
joserfc's own encoder where the algorithm is deterministic."""

from __future__ import annotations

import base64
import datetime
import json
import warnings
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt as jose_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, RSAKey

from tests.support import verify_both
from tokensmith.core import fast_json
from tokensmith.jose.jws import sign_jwt, verify_jwt
from tokensmith.jose.keys import SigningKey, generate_signing_key, verification_key_from_jwk
from tokensmith.jose.signer import CompactSigner

ALGS = ["ES256", "Ed25519", "EdDSA", "RS256"]
DETERMINISTIC = ["Ed25519", "EdDSA", "RS256"]  # ES256 signatures are randomised
CLAIMS: dict[str, Any] = {
    "iss": "https://issuer.example.com",
    "sub": "user-1",
    "aud": ["https://a.example", "https://b.example"],
    "exp": 1_790_000_300,
    "iat": 1_790_000_000,
    "jti": "j-1",
    "scope": "orders:read orders:write",
    "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
}


@pytest.fixture(scope="module", params=ALGS)
def key(request: pytest.FixtureRequest) -> SigningKey:
    return generate_signing_key(request.param)


def segment(token: str, index: int) -> bytes:
    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def joserfc_token(key: SigningKey, claims: dict[str, Any], typ: str) -> str:
    """What sign_jwt gave before the fast path: joserfc's jwt.encode with the same header."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
        header = {"alg": key.alg, "kid": key.kid, "typ": typ}
        return jose_jwt.encode(header, claims, key.key, algorithms=[key.alg])


@pytest.mark.parametrize("typ", ["at+jwt", "JWT"])
def test_both_libraries_verify_the_token_and_read_its_header(key: SigningKey, typ: str) -> None:
    token = sign_jwt(key, CLAIMS, typ=typ)
    header, claims = verify_both(token, key)
    assert header == {"typ": typ, "alg": key.alg, "kid": key.kid}
    assert claims == CLAIMS
    # Our own verifier, with the key as the JWKS publishes it.
    assert verify_jwt(token, {key.kid: verification_key_from_jwk(key.public_jwk())})[1] == CLAIMS


def test_header_and_payload_are_the_bytes_joserfc_writes(key: SigningKey) -> None:
    claims = {**CLAIMS, "name": "Zoë 😀", "quote": 'a"b\\c\n\u2028'}
    ours, theirs = sign_jwt(key, claims, typ="at+jwt"), joserfc_token(key, claims, "at+jwt")
    assert ours.split(".")[:2] == theirs.split(".")[:2]
    assert segment(ours, 0) == b'{"typ":"at+jwt","alg":"%s","kid":"%s"}' % (
        key.alg.encode(),
        key.kid.encode(),
    )
    assert segment(ours, 1).decode("utf-8") == json.dumps(
        claims, separators=(",", ":"), ensure_ascii=False
    )


@pytest.mark.parametrize("alg", DETERMINISTIC)
def test_a_deterministic_signature_is_joserfcs_token_byte_for_byte(alg: str) -> None:
    key = generate_signing_key(alg)
    assert sign_jwt(key, CLAIMS, typ="at+jwt") == joserfc_token(key, CLAIMS, "at+jwt")


def test_es256_signatures_are_raw_r_and_s_of_32_bytes_leading_zeros_kept() -> None:
    """RFC 7518 §3.4: a DER signature's R or S below 2^248 is shorter; JWS keeps 32 bytes each."""
    key = generate_signing_key("ES256")
    public = key.key.public_key
    short = None
    for attempt in range(4000):  # about 1 signature in 128 has a leading zero byte in R or S
        token = sign_jwt(key, {"n": attempt})
        raw = segment(token, 2)
        assert len(raw) == 64
        if raw[0] == 0 or raw[32] == 0:
            short = token
            break
    assert short is not None
    raw = segment(short, 2)
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    signing_input = short.rsplit(".", 1)[0].encode()
    public.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
    assert verify_both(short, key)[1] == {"n": attempt}


def test_the_header_is_encoded_once_per_typ(key: SigningKey) -> None:
    first = sign_jwt(key, {"sub": "x"}, typ="at+jwt")
    assert key.signer is key.signer  # kept with the key
    assert sign_jwt(key, {"sub": "y"}, typ="at+jwt").split(".")[0] == first.split(".")[0]
    assert sign_jwt(key, {"sub": "x"}, typ="JWT").split(".")[0] != first.split(".")[0]


def test_header_cache_stays_bounded_for_many_typ_values() -> None:
    key = generate_signing_key("ES256")
    for n in range(50):
        assert segment(sign_jwt(key, {}, typ=f"t{n}"), 0).startswith(b'{"typ":"t%d"' % n)
    assert len(key.signer._headers) <= 8


def test_claims_orjson_refuses_are_encoded_by_the_standard_library(key: SigningKey) -> None:
    claims = {"sub": "x", "big": 2**70, "negative": -(2**64)}
    header, decoded = verify_both(sign_jwt(key, claims), key)
    assert decoded == claims and header["alg"] == key.alg


def test_without_orjson_the_token_is_the_same(
    key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard's base install signs (gateway, tests) without orjson."""
    claims = {**CLAIMS, "name": "Zoë"}
    expected = sign_jwt(key, claims, typ="at+jwt")
    monkeypatch.setattr(fast_json, "_orjson_dumps", None)
    token = sign_jwt(key, claims, typ="at+jwt")
    assert token.split(".")[:2] == expected.split(".")[:2]
    assert verify_both(token, key)[1] == claims


def test_a_datetime_claim_is_refused_not_written_as_a_string() -> None:
    key = generate_signing_key("ES256")
    with pytest.raises(TypeError):
        sign_jwt(key, {"exp": datetime.datetime.now(datetime.UTC)})


def p384_key() -> ECKey:
    return ECKey.import_key(ec.generate_private_key(ec.SECP384R1()))


def rsa_key(bits: int) -> RSAKey:
    with pytest.warns(SecurityWarning, match="2048"):  # joserfc warns, and would still sign
        return RSAKey.import_key(rsa.generate_private_key(65537, bits))


@pytest.mark.parametrize(
    ("alg", "make"),
    [
        ("ES256", lambda: generate_signing_key("RS256").key),  # an RSA key for ES256
        ("RS256", lambda: generate_signing_key("ES256").key),  # an EC key for RS256
        ("Ed25519", lambda: generate_signing_key("ES256").key),
        ("EdDSA", lambda: generate_signing_key("RS256").key),
        ("ES256", p384_key),  # the wrong curve
        ("RS256", lambda: rsa_key(1024)),  # too small
        ("HS256", lambda: generate_signing_key("ES256").key),  # not in the allowlist
        ("none", lambda: generate_signing_key("ES256").key),
    ],
)
def test_a_key_that_does_not_fit_its_algorithm_signs_nothing(alg: str, make: Any) -> None:
    key = SigningKey(kid="k1", alg=alg, key=make())
    with pytest.raises(ValueError, match=r"k1|unsupported"):
        sign_jwt(key, {"sub": "x"})


def test_a_public_key_signs_nothing() -> None:
    signing = generate_signing_key("ES256")
    public = ECKey.import_key(signing.public_jwk())
    with pytest.raises(ValueError, match="not a private ES256 key"):
        sign_jwt(SigningKey(kid="k1", alg="ES256", key=public), {"sub": "x"})
    with pytest.raises(ValueError, match="not a private"):
        CompactSigner("k1", "ES256", signing.key.public_key)
