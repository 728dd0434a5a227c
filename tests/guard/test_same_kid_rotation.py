"""A key replaced in the issuer's JWKS under the same ``kid`` (new material, or a new alg) is a
key change like any other: the validator forgets the headers and tokens it judged under the old
key, so the old key stops verifying and the new one starts at once."""

from __future__ import annotations

import json

import pytest

from tests.guard.forge import AUDIENCE, ISSUER, claims, new_key, sign
from tokensmith.guard import InvalidToken, JwksCache, JwtValidator
from tokensmith.jose.keys import SigningKey, generate_signing_key


def _install(jwks: JwksCache, *keys: SigningKey) -> None:
    jwks._install(json.dumps({"keys": [k.public_jwk() for k in keys]}).encode())


@pytest.mark.parametrize("new_alg", ["ES256", "Ed25519"])
def test_a_key_replaced_under_its_kid_ends_the_old_keys_tokens(new_alg: str) -> None:
    old = new_key("ES256")
    new = SigningKey(kid=old.kid, alg=new_alg, key=generate_signing_key(new_alg).key)
    jwks = JwksCache("http://127.0.0.1:9/jwks")
    validator = JwtValidator(jwks, issuer=ISSUER, audiences=[AUDIENCE])
    jwks.on_change = validator.forget  # as Guard wires it
    _install(jwks, old)
    seen = sign(old, claims())
    assert validator.validate(seen).subject == "user-1"  # its header is judged and kept

    _install(jwks, new)

    with pytest.raises(InvalidToken):
        validator.validate(seen)  # remembered under the old key
    with pytest.raises(InvalidToken):
        validator.validate(sign(old, claims()))  # a fresh token of the old key
    assert validator.validate(sign(new, claims())).subject == "user-1"


def test_an_unchanged_jwks_keeps_what_was_judged() -> None:
    key = new_key("ES256")
    jwks = JwksCache("http://127.0.0.1:9/jwks")
    forgotten: list[None] = []
    jwks.on_change = lambda: forgotten.append(None)
    _install(jwks, key)
    _install(jwks, key)
    assert len(forgotten) == 1  # the first load only: a refetch of the same keys is no change
