"""SECURITY.md cases 1-14 and 66 as tokens: each one must be refused with 401 invalid_token.

A case is (name, build) where build(keys, issuer_url) returns the token to send. Shared by the
guard tests (three adapters) and the gateway tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.guard.forge import (
    AUDIENCE,
    DROP,
    ISSUER,
    b64,
    claims,
    hs256,
    public_forms,
    respellings,
    seg,
    sign,
    signature,
    with_loose_tails,
)

Build = Callable[[Any, str], str]


def _none(alg: str, sig: str = "") -> Build:
    return lambda k, u: (
        f"{seg({'alg': alg, 'kid': k.es.kid, 'typ': 'at+jwt'})}.{seg(claims())}.{sig}"
    )


def _hs_with_public(form: int) -> Build:
    def build(k: Any, u: str) -> str:
        secret = public_forms(k.es)[form]
        return hs256(secret, {"alg": "HS256", "kid": k.es.kid, "typ": "at+jwt"}, claims())

    return build


def _hs_secret(secret: bytes) -> Build:
    return lambda k, u: hs256(secret, {"alg": "HS256", "typ": "at+jwt"}, claims())


def _es_signature(sig: bytes) -> Build:
    def build(k: Any, u: str) -> str:
        head = seg({"alg": "ES256", "kid": k.es.kid, "typ": "at+jwt"})
        return f"{head}.{seg(claims())}.{b64(sig)}"

    return build


def _der_signature(k: Any, u: str) -> str:
    head = seg({"alg": "ES256", "kid": k.es.kid, "typ": "at+jwt"})
    signing_input = f"{head}.{seg(claims())}"
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.hashes import SHA256

    der = k.es.key.raw_value.sign(signing_input.encode(), ec.ECDSA(SHA256()))
    return f"{signing_input}.{b64(der)}"


def _header(**header: Any) -> Build:
    return lambda k, u: sign(k.es, claims(), **header)


def _claims(**overrides: Any) -> Build:
    return lambda k, u: sign(k.es, claims(**overrides))


def _segments(n: int) -> Build:
    def build(k: Any, u: str) -> str:
        good = sign(k.es, claims())
        parts = good.split(".")
        return ".".join((parts * 2)[:n])

    return build


def _jwe_unsigned(k: Any, u: str) -> str:
    head = seg({"alg": "dir", "enc": "A128GCM", "cty": "JWT", "kid": k.es.kid})
    inner = f"{seg({'alg': 'none'})}.{seg(claims())}."
    return f"{head}..{b64(b'0' * 12)}.{b64(inner)}.{b64(b'0' * 16)}"


def _rogue_with(**header: Any) -> Build:
    def build(k: Any, u: str) -> str:
        extra = {
            name: (value(k, u) if callable(value) else value) for name, value in header.items()
        }
        return sign(k.rogue, claims(), **extra)

    return build


def _sign_alg_mismatch(k: Any, u: str) -> str:
    """Signed by the RSA key, but claims the EC key's kid."""
    head = seg({"alg": "RS256", "kid": k.es.kid, "typ": "at+jwt"})
    signing_input = f"{head}.{seg(claims())}"
    return f"{signing_input}.{b64(signature(k.rs, signing_input.encode()))}"


def _es_kid_wrong_alg(alg: str) -> Build:
    return lambda k, u: sign(k.es, claims(), alg=alg)


def _respelled(index: int) -> Build:
    """Case 66: a valid token with one segment spelled another way (unused bits set)."""

    def build(k: Any, u: str) -> str:
        parts = with_loose_tails(k.es).split(".")
        parts[index] = respellings(parts[index])[-1]
        return ".".join(parts)

    return build


def _padded(index: int) -> Build:
    def build(k: Any, u: str) -> str:
        parts = sign(k.es, claims()).split(".")
        parts[index] += "=="
        return ".".join(parts)

    return build


NUMBER_NAN = "NaN"

CASES: list[tuple[str, Build]] = [
    # 1. alg none in any spelling
    ("1-none", _none("none")),
    ("1-None", _none("None")),
    ("1-NONE", _none("NONE")),
    ("1-nOnE-with-sig", _none("nOnE", b64(b"x" * 64))),
    # 2. HS256 with our public key as the secret
    ("2-hs256-pem", _hs_with_public(0)),
    ("2-hs256-pem-stripped", _hs_with_public(1)),
    ("2-hs256-der", _hs_with_public(2)),
    ("2-hs256-jwk", _hs_with_public(3)),
    # 3. weak HMAC; valid header with an empty signature
    ("3-hs256-empty-secret", _hs_secret(b"")),
    ("3-hs256-secret", _hs_secret(b"secret")),
    ("3-empty-signature", lambda k, u: sign(k.es, claims()).rsplit(".", 1)[0] + "."),
    # 4. key-carrying headers
    ("4-embedded-jwk", _rogue_with(jwk=lambda k, u: k.rogue.public_jwk(), kid=DROP)),
    ("4-embedded-jwk-our-kid", _rogue_with(jwk=lambda k, u: k.rogue.public_jwk())),
    ("4-jku", _rogue_with(jku=lambda k, u: u + "/attacker-jwks")),
    ("4-x5u", _rogue_with(x5u=lambda k, u: u + "/attacker-x5u")),
    ("4-x5c", _header(x5c=["MIIB"])),
    # 5. hostile kid values
    ("5-kid-path", _rogue_with(kid="../../dev/null")),
    ("5-kid-sql", _rogue_with(kid="x' OR '1'='1")),
    ("5-kid-number", _header(kid=7)),
    # 7. ECDSA signature shapes
    ("7-zero-signature", _es_signature(b"\x00" * 64)),
    ("7-short-signature", _es_signature(b"\x01" * 63)),
    ("7-long-signature", _es_signature(b"\x01" * 65)),
    ("7-der-signature", _der_signature),
    # 8. header alg differs from the key's
    ("8-rs256-under-es-kid", _sign_alg_mismatch),
    ("8-es384", _es_kid_wrong_alg("ES384")),
    ("8-es256-lowercase", _es_kid_wrong_alg("es256")),
    # 9. crit and b64
    ("9-crit-unknown", _header(crit=["x-ext"], **{"x-ext": 1})),
    ("9-crit-malformed", _header(crit="exp")),
    ("9-crit-empty", _header(crit=[])),
    ("9-b64-false", _header(b64=False, crit=["b64"])),
    ("9-b64-false-no-crit", _header(b64=False)),
    # 10. wrong number of segments, JWE
    ("10-two-segments", _segments(2)),
    ("10-four-segments", _segments(4)),
    ("10-five-segments", _segments(5)),
    ("10-jwe-unsigned", _jwe_unsigned),
    # 11. oversized
    ("11-oversized", lambda k, u: sign(k.es, claims(pad="x" * 9000))),
    # 12. audience and issuer
    ("12-aud-wrong", _claims(aud="https://other.test")),
    ("12-aud-missing", _claims(aud=DROP)),
    ("12-aud-list-other", _claims(aud=["https://a.test", "https://b.test"])),
    ("12-aud-prefix", _claims(aud=AUDIENCE[:-1])),
    ("12-aud-number", _claims(aud=5)),
    ("12-iss-prefix", _claims(iss=ISSUER[:-2])),
    ("12-iss-longer", _claims(iss=ISSUER + ".evil")),
    ("12-iss-slash", _claims(iss=ISSUER + "/")),
    ("12-iss-missing", _claims(iss=DROP)),
    # 13. time claims
    ("13-exp-missing", _claims(exp=DROP)),
    ("13-exp-past", _claims(exp=1_000_000)),
    ("13-exp-string", _claims(exp="9999999999")),
    ("13-exp-bool", _claims(exp=True)),
    ("13-nbf-future", _claims(nbf=4_000_000_000)),
    ("13-iat-future", _claims(iat=4_000_000_000)),
    ("13-iat-string", _claims(iat="now")),
    # 14. not an access token
    ("14-typ-jwt", _header(typ="JWT")),
    ("14-typ-missing", _header(typ=DROP)),
    ("14-typ-id-token", _header(typ="id_token+jwt")),
    ("14-refresh-token", lambda k, u: "tsrt_" + b64(b"r" * 32)),
    # 66. one token, one spelling: unused base64url bits, padding
    ("66-header-respelled", _respelled(0)),
    ("66-payload-respelled", _respelled(1)),
    ("66-signature-respelled", _respelled(2)),
    ("66-header-padded", _padded(0)),
    ("66-signature-padded", _padded(2)),
]

EXPIRED = "13-exp-past"


def nan_exp(k: Any, u: str) -> str:
    """Python's json reads NaN; a NumericDate it is not."""
    body = json.dumps(claims()).replace('"exp": ', '"exp": NaN, "x": ')
    head = seg({"alg": "ES256", "kid": k.es.kid, "typ": "at+jwt"})
    signing_input = f"{head}.{b64(body)}"
    return f"{signing_input}.{b64(signature(k.es, signing_input.encode()))}"


CASES.append(("13-exp-nan", nan_exp))
