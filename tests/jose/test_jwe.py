"""The JWE allowlist and its wrapper (jose/jwe.py): what registration, the server, the guard and
the client kit share. Our JWEs open with joserfc alone, and joserfc's with ours."""

from __future__ import annotations

import pytest
from joserfc import jwe
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tokensmith.jose.jwe import (
    InvalidEncryption,
    decrypt_jwt,
    decryption_key,
    encrypt_jwt,
    encryption_choice,
    encryption_key,
    find_encryption_key,
    is_jwe,
)

SIGNED = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
RSA = RSAKey.generate_key(2048, parameters={"kid": "r"})
EC = ECKey.generate_key("P-521", parameters={"kid": "e"})


def test_choice_defaults_enc_and_refuses_the_rest() -> None:
    assert encryption_choice(None, None) is None
    assert encryption_choice("RSA-OAEP-256", None) == ("RSA-OAEP-256", "A256GCM")
    assert encryption_choice("ECDH-ES+A256KW", "A256GCM") == ("ECDH-ES+A256KW", "A256GCM")
    with pytest.raises(ValueError, match="needs its alg"):
        encryption_choice(None, "A256GCM")
    for alg in ("RSA1_5", "RSA-OAEP", "dir", "A256KW", "A128KW", "PBES2-HS256+A128KW", "none"):
        with pytest.raises(ValueError, match="not supported"):
            encryption_choice(alg, None)
    for enc in ("A128GCM", "A256CBC-HS512", "A128CBC-HS256"):
        with pytest.raises(ValueError, match="only A256GCM"):
            encryption_choice("ECDH-ES", enc)


def test_round_trips_both_ways_with_joserfc() -> None:
    for key, alg in ((RSA, "RSA-OAEP-256"), (EC, "ECDH-ES"), (EC, "ECDH-ES+A256KW")):
        ours = encrypt_jwt(SIGNED, encryption_key(key.as_dict(private=False), alg))
        opened = jwe.decrypt_compact(ours, key, algorithms=[alg, "A256GCM"])
        assert opened.plaintext == SIGNED.encode()
        assert opened.protected["cty"] == "JWT"
        assert opened.protected["kid"] == key.kid
        theirs = jwe.encrypt_compact(
            {"alg": alg, "enc": "A256GCM"}, SIGNED, key, algorithms=[alg, "A256GCM"]
        )
        assert decrypt_jwt(theirs, [decryption_key(key.as_dict(private=True))]) == SIGNED
        assert is_jwe(ours) and is_jwe(theirs) and not is_jwe(SIGNED)


def test_the_encryption_key_of_a_registered_jwks() -> None:
    signing = {**RSA.as_dict(private=False), "use": "sig", "alg": "RS256", "kid": "s"}
    enc = {**EC.as_dict(private=False), "use": "enc", "kid": "e"}
    jwks = {"keys": [signing, enc]}
    assert find_encryption_key(jwks, "RSA-OAEP-256") is None  # the RSA key only signs
    found = find_encryption_key(jwks, "ECDH-ES")
    assert found is not None and found.kid == "e" and found.alg == "ECDH-ES"
    pinned = {"keys": [{**EC.as_dict(private=False), "alg": "ECDH-ES+A256KW"}]}
    assert find_encryption_key(pinned, "ECDH-ES") is None  # bound to another alg
    assert find_encryption_key(None, "ECDH-ES") is None


def test_weak_and_foreign_keys_are_refused() -> None:
    small = RSAKey.generate_key(2048).as_dict(private=False)
    for jwk in (
        {**small, "n": small["n"][:170]},  # about 1024 bits
        ECKey.generate_key("secp256k1").as_dict(private=False),
        OKPKey.generate_key("Ed25519").as_dict(private=False),
        RSA.as_dict(private=True),  # a private key registered as public
        {**RSA.as_dict(private=False), "use": "sig"},
        {**RSA.as_dict(private=False), "alg": "RSA1_5"},
        {"kty": "oct", "k": "c2VjcmV0"},
    ):
        with pytest.raises(ValueError):
            encryption_key(jwk)
    with pytest.raises(ValueError, match="cannot be used"):
        encryption_key(RSA.as_dict(private=False), "ECDH-ES")


def test_decryption_refuses_before_any_key_is_tried() -> None:
    keys = [decryption_key(RSA.as_dict(private=True))]
    for token in ("a.b.c.d", "a.b.c.d.e.f", "", "!!.a.b.c.d"):
        with pytest.raises(InvalidEncryption):
            decrypt_jwt(token, keys)
    with pytest.raises(InvalidEncryption, match="too large"):
        decrypt_jwt("a" * 20000, keys)
