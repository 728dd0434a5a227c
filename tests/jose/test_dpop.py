"""jose/dpop.py: every stateless check of RFC 9449 §4.3, on proofs PyJWT signs independently."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tokensmith.jose import dpop
from tokensmith.jose.dpop import (
    DPOP_ALGORITHMS,
    DpopError,
    access_token_hash,
    generate_proof_key,
    jwk_thumbprint,
    make_proof,
    normalize_htu,
    public_jwk,
    verify_proof,
)

URL = "https://as.example/token"
NOW = 1_700_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any] | None = None, sig: bytes = b"x") -> str:
    """A proof whose signature is not checked before the check under test fails."""
    body = claims or {"jti": "j", "htm": "POST", "htu": URL, "iat": NOW}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}.{b64(sig)}"


def ec_key() -> tuple[ec.EllipticCurvePrivateKey, dict[str, Any]]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, json.loads(ECAlgorithm.to_jwk(key.public_key()))


def craft(
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
    *,
    key: Any = None,
    jwk: dict[str, Any] | None = None,
    alg: str = "ES256",
    drop: tuple[str, ...] = (),
) -> str:
    """A proof signed by PyJWT, with any claim or header member changed or dropped."""
    if key is None:
        key, own_jwk = ec_key()
        jwk = own_jwk if jwk is None else jwk
    body = {"jti": "j-1", "htm": "POST", "htu": URL, "iat": NOW, **(claims or {})}
    head = {"typ": "dpop+jwt", "jwk": jwk, **(header or {})}
    for name in drop:
        body.pop(name, None)
        head.pop(name, None)
    return pyjwt.encode(body, key, algorithm=alg, headers=head)


def verify(proof: str, **kwargs: Any) -> dpop.DpopProof:
    args: dict[str, Any] = {"method": "POST", "url": URL, "now": NOW, "max_age": 60}
    return verify_proof(proof, **{**args, **kwargs})


def refused(proof: str, fragment: str, **kwargs: Any) -> None:
    with pytest.raises(DpopError, match=fragment) as info:
        verify(proof, **kwargs)
    assert proof not in str(info.value)


# --- the good path, for every algorithm, both ways round ---------------------------------------


@pytest.mark.parametrize("alg", DPOP_ALGORITHMS)
def test_make_proof_verifies_for_every_algorithm(alg: str) -> None:
    key = generate_proof_key(alg)
    proof = make_proof(key, method="POST", url=URL, now=NOW, alg=alg, nonce="n-1")
    result = verify(proof)
    assert result.jkt == jwk_thumbprint(public_jwk(key))
    assert (result.alg, result.htm, result.htu, result.iat) == (alg, "POST", URL, NOW)
    assert result.nonce == "n-1" and result.ath is None


def test_make_proof_is_a_proof_pyjwt_reads() -> None:
    key = generate_proof_key()
    proof = make_proof(key, method="GET", url=URL + "?q=1#f", now=NOW, access_token="at")
    header = pyjwt.get_unverified_header(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == "ES256"
    assert "d" not in header["jwk"]
    public = ECAlgorithm.from_jwk(json.dumps(header["jwk"]))
    claims = pyjwt.decode(proof, public, algorithms=["ES256"])
    assert claims["htu"] == URL and claims["ath"] == access_token_hash("at")
    assert claims["htm"] == "GET" and claims["iat"] == NOW


def test_every_proof_has_a_fresh_jti() -> None:
    key = generate_proof_key()
    jtis = {verify(make_proof(key, method="POST", url=URL, now=NOW)).jti for _ in range(5)}
    assert len(jtis) == 5


def test_pyjwt_signed_proof_verifies() -> None:
    key, jwk = ec_key()
    result = verify(craft(key=key, jwk=jwk))
    assert result.jkt == jwk_thumbprint(jwk) and result.jti == "j-1"


def test_make_proof_accepts_a_joserfc_key_and_refuses_a_mismatched_alg() -> None:
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256")
    assert verify(make_proof(key, method="POST", url=URL, now=NOW)).alg == "ES256"
    with pytest.raises(ValueError):
        make_proof(key, method="POST", url=URL, now=NOW, alg="PS256")
    with pytest.raises(ValueError):
        make_proof(public_jwk(generate_proof_key()), method="POST", url=URL, now=NOW)
    with pytest.raises(ValueError):
        generate_proof_key("HS256")


# --- RFC test vectors -------------------------------------------------------------------------


def test_thumbprint_and_ath_match_rfc_9449_examples() -> None:
    # RFC 9449 §4.1 / §6.1 key and its cnf.jkt; §7.1 access token and its ath.
    jwk = {
        "kty": "EC",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "crv": "P-256",
    }
    assert jwk_thumbprint(jwk) == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "PS256"])
def test_thumbprint_agrees_with_joserfc(alg: str) -> None:
    from joserfc.jwk import import_key

    key = generate_proof_key(alg)
    assert jwk_thumbprint(key) == import_key(public_jwk(key)).thumbprint()


def test_thumbprint_ignores_optional_members_and_refuses_incomplete_keys() -> None:
    jwk = public_jwk(generate_proof_key())
    assert jwk_thumbprint({**jwk, "kid": "x", "use": "sig"}) == jwk_thumbprint(jwk)
    with pytest.raises(DpopError):
        jwk_thumbprint({"kty": "oct", "k": "AAAA"})
    with pytest.raises(DpopError):
        jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": "AA"})


def test_ath_refuses_a_non_ascii_token() -> None:
    with pytest.raises(DpopError):
        access_token_hash("tökén")


# --- htu normalisation (RFC 9449 §4.3 step 9, RFC 3986 §6) -------------------------------------


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("HTTPS://AS.Example/token", "https://as.example/token"),
        ("https://as.example:443/token", "https://as.example/token"),
        ("http://as.example:80/token", "http://as.example/token"),
        ("https://as.example:8443/token", "https://as.example:8443/token"),
        ("https://as.example/token?a=1#frag", "https://as.example/token"),
        ("https://as.example", "https://as.example/"),
        ("https://as.example?x", "https://as.example/"),
        ("https://as.example/a%2fb", "https://as.example/a%2Fb"),
        ("https://as.example/%7Euser/%41", "https://as.example/~user/A"),
        ("https://as.example/a/./b/../token", "https://as.example/a/token"),
        ("http://[::1]:8080/token", "http://[::1]:8080/token"),
    ],
)
def test_normalize_htu(url: str, normal: str) -> None:
    assert normalize_htu(url) == normal


@pytest.mark.parametrize(
    "url",
    ["/token", "ftp://as.example/token", "https://user@as.example/token", "https://h:99999/x", ""],
)
def test_normalize_htu_refuses_what_is_no_http_url(url: str) -> None:
    with pytest.raises(DpopError):
        normalize_htu(url)


def test_htu_is_compared_normalised_but_path_changes_still_fail() -> None:
    assert verify(craft({"htu": "HTTPS://as.example:443/token?x=1"})).htu.startswith("HTTPS")
    refused(craft({"htu": URL + "/"}), "htu")
    refused(craft({"htu": "https://as.example/Token"}), "htu")
    refused(craft({"htu": "https://other.example/token"}), "htu")
    refused(craft({"htu": "http://as.example/token"}), "htu")
    refused(craft({"htu": "https://as.example:8443/token"}), "htu")
    refused(craft({"htu": "/token"}), "htu")
    refused(craft({"htu": 7}), "htu")
    refused(craft(drop=("htu",)), "htu")


# --- header checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "DPOP+JWT", "dpop", None])
def test_wrong_typ_is_refused(typ: str | None) -> None:
    proof = craft(header={"typ": typ}) if typ else craft(drop=("typ",))
    refused(proof, "typ")


def test_alg_none_is_refused() -> None:
    _, jwk = ec_key()
    head = b64(json.dumps({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}).encode())
    body = b64(json.dumps({"jti": "j", "htm": "POST", "htu": URL, "iat": NOW}).encode())
    refused(f"{head}.{body}.", "JWS")
    refused(f"{head}.{body}.{b64(b'x')}", "alg")


@pytest.mark.parametrize("alg", ["HS256", "HS512"])
def test_hmac_proof_is_refused(alg: str) -> None:
    secret = b"s" * 64
    jwk = {"kty": "oct", "k": b64(secret)}
    refused(craft(key=secret, jwk=jwk, alg=alg), "alg")


def test_hmac_signed_with_the_public_key_as_secret_is_refused() -> None:
    _, jwk = ec_key()
    head = b64(json.dumps({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}).encode())
    body = b64(json.dumps({"jti": "j", "htm": "POST", "htu": URL, "iat": NOW}).encode())
    mac = hmac.new(json.dumps(jwk).encode(), f"{head}.{body}".encode(), hashlib.sha256)
    refused(f"{head}.{body}.{b64(mac.digest())}", "alg")


def test_alg_outside_the_callers_allowlist_is_refused() -> None:
    refused(craft(), "alg", algorithms=("EdDSA",))


def test_alg_not_matching_the_key_is_refused() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    _, ec_jwk = ec_key()
    # An RSA key under ES256, an EC key under PS256, a P-384 key under ES256.
    refused(forge({"typ": "dpop+jwt", "alg": "ES256", "jwk": rsa_jwk}), "fit")
    refused(craft(key=rsa_key, jwk=ec_jwk, alg="PS256"), "fit")
    p384 = ec.generate_private_key(ec.SECP384R1())
    p384_jwk = json.loads(ECAlgorithm.to_jwk(p384.public_key()))
    refused(forge({"typ": "dpop+jwt", "alg": "ES256", "jwk": p384_jwk}), "fit")
    refused(craft(key=p384, jwk={**p384_jwk, "alg": "ES512"}, alg="ES384"), "another alg")


def test_private_key_in_jwk_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    private = json.loads(ECAlgorithm.to_jwk(key, as_dict=False))
    assert "d" in private
    refused(craft(key=key, jwk=private), "private")
    _, jwk = ec_key()
    for member in ("p", "q", "dp", "dq", "qi", "k", "oth"):
        refused(craft(key=key, jwk={**jwk, member: "AQAB"}), "private")


def test_missing_or_malformed_jwk_is_refused() -> None:
    refused(craft(drop=("jwk",)), "jwk")
    refused(craft(header={"jwk": "not-a-key"}), "jwk")
    key, jwk = ec_key()
    refused(craft(key=key, jwk={k: v for k, v in jwk.items() if k != "y"}), "member")
    refused(craft(key=key, jwk={**jwk, "x": 5}), "member")
    refused(craft(key=key, jwk={**jwk, "x": b64(b"\x00" * 32)}), "valid public key|verify")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_small_rsa_key_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    refused(craft(key=key, jwk=jwk, alg="RS256"), "RSA key size")


def test_eddsa_with_an_ed448_or_x25519_key_is_refused() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    assert verify(craft(key=key, jwk=jwk, alg="EdDSA")).alg == "EdDSA"
    refused(craft(key=key, jwk={**jwk, "crv": "Ed448"}, alg="EdDSA"), "fit")
    refused(craft(key=key, jwk={**jwk, "crv": "X25519"}, alg="EdDSA"), "fit")


@pytest.mark.parametrize("name", ["crit", "jku", "x5u", "x5c", "b64", "zip"])
def test_dangerous_headers_are_refused(name: str) -> None:
    value: Any = ["exp"] if name in ("crit", "x5c") else (False if name == "b64" else "x")
    _, jwk = ec_key()
    refused(forge({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk, name: value}), name)


# --- signature checks ---------------------------------------------------------------------------


def test_bad_signature_is_refused() -> None:
    proof = craft()
    head, body, sig = proof.split(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    refused(f"{head}.{body}.{flipped}", "signature")
    refused(f"{head}.{body}.{b64(bytes(64))}", "signature")  # CVE-2022-21449 zeros
    refused(f"{head}.{body}.{b64(b'short')}", "signature")


def test_claims_changed_after_signing_are_refused() -> None:
    head, _, sig = craft().split(".")
    body = b64(json.dumps({"jti": "j-1", "htm": "GET", "htu": URL, "iat": NOW}).encode())
    refused(f"{head}.{body}.{sig}", "signature")


def test_proof_signed_by_another_key_than_its_jwk_is_refused() -> None:
    signer, _ = ec_key()
    _, other_jwk = ec_key()
    refused(craft(key=signer, jwk=other_jwk), "signature")


# --- claim checks -------------------------------------------------------------------------------


def test_htm_must_match_exactly() -> None:
    refused(craft({"htm": "GET"}), "htm")
    refused(craft({"htm": "post"}), "htm")
    refused(craft(drop=("htm",)), "htm")
    refused(craft({"htm": ["POST"]}), "htm")
    assert verify(craft({"htm": "GET"}), method="GET").htm == "GET"


@pytest.mark.parametrize("jti", [None, "", "x" * 257, 5, ["a"]])
def test_bad_jti_is_refused(jti: Any) -> None:
    proof = craft(drop=("jti",)) if jti is None else craft({"jti": jti})
    refused(proof, "jti")


def test_iat_window() -> None:
    assert verify(craft({"iat": NOW - 60})).iat == NOW - 60
    assert verify(craft({"iat": NOW + 5})).iat == NOW + 5
    refused(craft({"iat": NOW - 61}), "too old")
    refused(craft({"iat": NOW + 6}), "future")
    refused(craft({"iat": NOW + 3600}), "future")
    refused(craft({"iat": NOW - 10}), "too old", max_age=5)
    assert verify(craft({"iat": NOW + 20}), max_future=30).iat == NOW + 20


@pytest.mark.parametrize("iat", [None, "1700000000", 1_700_000_000.5, True])
def test_iat_must_be_an_integer(iat: Any) -> None:
    proof = craft(drop=("iat",)) if iat is None else craft({"iat": iat})
    refused(proof, "iat")


def test_ath_required_and_checked_when_a_token_is_presented() -> None:
    token = "at-123"
    good = craft({"ath": access_token_hash(token)})
    assert verify(good, access_token=token).ath == access_token_hash(token)
    refused(craft(), "ath", access_token=token)
    refused(craft({"ath": access_token_hash("other")}), "ath", access_token=token)
    refused(craft({"ath": 5}), "ath", access_token=token)
    # Without a token (the token endpoint) ath is not looked at.
    assert verify(good).ath == access_token_hash(token)


def test_nonce_is_returned_and_must_be_a_string() -> None:
    assert verify(craft({"nonce": "abc"})).nonce == "abc"
    assert verify(craft()).nonce is None
    refused(craft({"nonce": 7}), "nonce")


# --- shape and size ------------------------------------------------------------------------------


def test_oversize_proof_is_refused_before_parsing() -> None:
    refused(craft({"pad": "x" * 9000}), "too large")
    refused("a" * (dpop.MAX_PROOF_BYTES + 1), "too large")


@pytest.mark.parametrize(
    "proof",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",
        "..",
        "!!.!!.!!",
        f"{b64(b'not json')}.{b64(b'{}')}.{b64(b'x')}",
        f"{b64(b'[1]')}.{b64(b'{}')}.{b64(b'x')}",
        f"{b64(json.dumps({'typ': 'dpop+jwt'}).encode())}.{b64(b'42')}.{b64(b'x')}",
        f"{b64(b'{' * 5000)}.{b64(b'{}')}.{b64(b'x')}",
    ],
)
def test_malformed_or_non_json_proof_is_refused(proof: str) -> None:
    with pytest.raises(DpopError):
        verify(proof)


def test_two_proofs_in_one_value_are_refused() -> None:
    # Two header values joined by a comma, as a proxy folds them (RFC 9110 §5.3).
    refused(f"{craft()},{craft()}", "compact JWS|base64url")
    refused(f"{craft()} {craft()}", "compact JWS|base64url")
