"""Encrypted access tokens (RFC 7516 nested JWTs) at the guard, over real HTTP: accepted when
joserfc or we encrypted a valid signed JWT to the resource's key; every other JWE refused with
401 invalid_token (SECURITY.md cases 117-120)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwe
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from tests.guard.conftest import Keys, asgi_app, flask_app
from tests.guard.forge import AUDIENCE, ISSUER, b64, claims, seg, sign
from tests.guard.servers import StubServer, asgi_server, wsgi_server
from tokensmith.guard import Guard, load_decryption_keys
from tokensmith.jose.jwe import encrypt_jwt, encryption_key

RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-enc"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-enc"})
X25519 = OKPKey.generate_key("X25519", parameters={"kid": "x-enc"})
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "rsa-enc"})  # our kid, another key


@dataclass
class Site:
    base_url: str
    guard: Guard


def call(site: Site, token: str) -> httpx.Response:
    return httpx.get(
        site.base_url + "/orders", headers={"authorization": f"Bearer {token}"}, timeout=10
    )


def _serve(adapter: str, guard: Guard) -> Iterator[Site]:
    if adapter == "flask":
        with wsgi_server(flask_app(guard)) as base:
            yield Site(base, guard)
        return
    with asgi_server(asgi_app(guard)) as base:
        yield Site(base, guard)


def _guard(issuer: StubServer, **options: Any) -> Guard:
    return Guard.for_issuer(
        ISSUER,
        audience=AUDIENCE,
        jwks_uri=issuer.base_url + "/jwks",
        unknown_kid_cooldown=3600,
        **options,
    )


@pytest.fixture(scope="module")
def pem_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "ec.pem"
    path.write_bytes(EC.as_pem(private=True))
    return path


@pytest.fixture(scope="module", params=["asgi", "flask"])
def site(request: pytest.FixtureRequest, issuer: StubServer, pem_file: Path) -> Iterator[Site]:
    # Three sources: a JWK dict, a PEM file (its kid is the key's thumbprint), a JWKS dict.
    keys = [RSA.as_dict(private=True), pem_file, {"keys": [X25519.as_dict(private=True)]}]
    yield from _serve(request.param, _guard(issuer, decryption_keys=keys))


@pytest.fixture(scope="module")
def strict(issuer: StubServer) -> Iterator[Site]:
    guard = _guard(issuer, decryption_keys=[RSA.as_dict(private=True)], require_encryption=True)
    yield from _serve("asgi", guard)


@pytest.fixture(scope="module")
def plain(issuer: StubServer) -> Iterator[Site]:
    yield from _serve("asgi", _guard(issuer))


def seal(plaintext: str, key: Any, header: dict[str, Any], *allowed: str) -> str:
    """A JWE joserfc makes, whatever its algorithms: the attacker's tool, not our allowlist."""
    algorithms = [header["alg"], header["enc"], *allowed]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # RSA1_5 and friends, on purpose
        return jwe.encrypt_compact(header, plaintext, key, algorithms=algorithms)


def public(key: Any) -> Any:
    return type(key).import_key(key.as_dict(private=False))


def test_joserfc_encrypted_tokens_pass(site: Site, keys: Keys) -> None:
    signed = sign(keys.es, claims())
    for alg, key in (
        ("RSA-OAEP-256", RSA),
        ("ECDH-ES", EC),
        ("ECDH-ES+A256KW", EC),
        ("ECDH-ES", X25519),
        ("ECDH-ES+A256KW", X25519),
    ):
        header = {"alg": alg, "enc": "A256GCM", "cty": "JWT", "kid": key.kid}
        if key is EC:
            del header["kid"]  # the PEM's kid is its thumbprint: found without one
        token = seal(signed, public(key), header)
        response = call(site, token)
        assert response.status_code == 200, (alg, response.text)
        assert response.json()["sub"] == "user-1"


def test_our_encrypted_tokens_pass(site: Site, keys: Keys) -> None:
    for key in (RSA, EC, X25519):
        jwk = key.as_dict(private=False)
        if key is EC:
            jwk["kid"] = EC.thumbprint()  # the kid the guard gave the PEM
        recipient = encryption_key(jwk)
        token = encrypt_jwt(sign(keys.rs, claims()), recipient)
        assert token.count(".") == 4
        assert call(site, token).status_code == 200


def test_plain_tokens_still_pass_unless_encryption_is_required(
    site: Site, strict: Site, keys: Keys
) -> None:
    assert call(site, sign(keys.es, claims())).status_code == 200
    refused = call(strict, sign(keys.es, claims()))
    assert refused.status_code == 401
    assert "must be encrypted" in refused.json()["error_description"]
    sealed = encrypt_jwt(sign(keys.es, claims()), encryption_key(RSA.as_dict(private=False)))
    assert call(strict, sealed).status_code == 200


def test_a_jwe_without_a_decryption_key_is_refused(plain: Site, keys: Keys) -> None:
    token = encrypt_jwt(sign(keys.es, claims()), encryption_key(RSA.as_dict(private=False)))
    response = call(plain, token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def _tamper(index: int) -> Callable[[Keys], str]:
    def build(keys: Keys) -> str:
        token = encrypt_jwt(sign(keys.es, claims()), encryption_key(RSA.as_dict(private=False)))
        parts = token.split(".")
        raw = bytearray(jwe_bytes(parts[index]))
        raw[0] ^= 1
        parts[index] = b64(bytes(raw))
        return ".".join(parts)

    return build


def jwe_bytes(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _refused_alg(alg: str, key: Any, enc: str = "A256GCM") -> Callable[[Keys], str]:
    def build(keys: Keys) -> str:
        return seal(sign(keys.es, claims()), key, {"alg": alg, "enc": enc})

    return build


def _inner(make: Callable[[Keys], str]) -> Callable[[Keys], str]:
    def build(keys: Keys) -> str:
        return seal(make(keys), public(RSA), {"alg": "RSA-OAEP-256", "enc": "A256GCM"})

    return build


def _with_header(**extra: Any) -> Callable[[Keys], str]:
    def build(keys: Keys) -> str:
        header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", **extra}
        return seal(sign(keys.es, claims()), public(RSA), header, "DEF")

    return build


OCT = OctKey.import_key(b"k" * 32)
HOSTILE: list[tuple[str, Callable[[Keys], str]]] = [
    ("tampered-tag", _tamper(4)),
    ("tampered-ciphertext", _tamper(3)),
    ("tampered-iv", _tamper(2)),
    ("tampered-encrypted-key", _tamper(1)),
    (
        "wrong-key-same-kid",
        lambda k: encrypt_jwt(
            sign(k.es, claims()), encryption_key(STRANGER.as_dict(private=False))
        ),
    ),
    (
        "unknown-kid",
        lambda k: seal(
            sign(k.es, claims()), public(RSA), {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "x"}
        ),
    ),
    ("rsa1_5", _refused_alg("RSA1_5", public(RSA))),
    ("rsa-oaep-sha1", _refused_alg("RSA-OAEP", public(RSA))),
    ("dir", _refused_alg("dir", OCT)),
    ("a256kw", _refused_alg("A256KW", OCT)),
    ("a128kw", _refused_alg("A128KW", OctKey.import_key(b"k" * 16))),
    ("pbes2", _refused_alg("PBES2-HS256+A128KW", OctKey.import_key(b"a long enough password"))),
    ("enc-a128gcm", _refused_alg("RSA-OAEP-256", public(RSA), "A128GCM")),
    ("enc-cbc-hs512", _refused_alg("RSA-OAEP-256", public(RSA), "A256CBC-HS512")),
    ("zip", _with_header(zip="DEF")),
    ("jku", _with_header(jku="https://attacker.test/jwks")),
    ("unsigned-inside", _inner(lambda k: f"{seg({'alg': 'none'})}.{seg(claims())}.")),
    ("claims-inside", _inner(lambda k: seg(claims()))),
    ("json-inside", _inner(lambda k: '{"sub": "user-1"}')),
    ("cty-not-jwt", _with_header(cty="json")),
    (
        "jwe-inside",
        _inner(
            lambda k: encrypt_jwt(sign(k.es, claims()), encryption_key(RSA.as_dict(private=False)))
        ),
    ),
    ("rogue-signer-inside", _inner(lambda k: sign(k.rogue, claims()))),
    ("expired-inside", _inner(lambda k: sign(k.es, claims(exp=1000)))),
    ("other-audience-inside", _inner(lambda k: sign(k.es, claims(aud="https://other.test")))),
    ("empty-segments", lambda k: "...."),
    ("non-canonical-tag", lambda k: _tamper(4)(k)[:-1] + "_"),
]


@pytest.mark.parametrize(("name", "build"), HOSTILE, ids=[n for n, _ in HOSTILE])
def test_hostile_jwes_are_refused(
    site: Site, keys: Keys, name: str, build: Callable[[Keys], str]
) -> None:
    response = call(site, build(keys))
    assert response.status_code == 401, (name, response.text)
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith(
        'Bearer realm="tokensmith", error="invalid_token"'
    )


def test_bad_decryption_keys_fail_at_start(tmp_path: Path) -> None:
    small = RSAKey.generate_key(2048).as_dict(private=True)
    bad: list[Any] = [
        RSA.as_dict(private=False),  # public: cannot decrypt
        {**RSA.as_dict(private=True), "alg": "RSA1_5"},
        {**RSA.as_dict(private=True), "use": "sig"},
        ECKey.generate_key("secp256k1").as_dict(private=True),
        OKPKey.generate_key("Ed25519").as_dict(private=True),
        {"kty": "oct", "k": "a2V5"},
        tmp_path / "missing.pem",
        {"keys": []},
        {**small, "n": small["n"][:100]},  # a modulus far under 2048 bits
    ]
    for source in bad:
        with pytest.raises(ValueError):
            load_decryption_keys([source])
    with pytest.raises(ValueError, match="distinct kids"):
        load_decryption_keys([RSA.as_dict(private=True), STRANGER.as_dict(private=True)])
    with pytest.raises(ValueError, match="require_encryption"):
        Guard.for_issuer(ISSUER, audience=AUDIENCE, require_encryption=True)
