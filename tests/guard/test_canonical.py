"""SECURITY.md case 66: one token, one spelling. Unused base64url bits, padding and characters
outside the alphabet in any JWT segment are refused by the guard, as by the server."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.guard.conftest import Keys
from tests.guard.forge import (
    AUDIENCE,
    ISSUER,
    claims,
    lenient_b64decode,
    respellings,
    sign,
    with_loose_tails,
)
from tokensmith.core.secrets import b64url, b64url_decode, b64url_is_canonical
from tokensmith.guard import InvalidToken, JwtValidator, StaticKeys, pin
from tokensmith.jose.keys import SigningKey, verification_key_from_jwk

SEGMENTS = ["header", "payload", "signature"]
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def validator_for(*keys: SigningKey) -> JwtValidator:
    pinned = [pin(verification_key_from_jwk(key.public_jwk())) for key in keys]
    return JwtValidator(StaticKeys(pinned), issuer=ISSUER, audiences=[AUDIENCE])


def replace(token: str, index: int, segment: str) -> str:
    parts = token.split(".")
    parts[index] = segment
    return ".".join(parts)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "Ed25519"])
@pytest.mark.parametrize("index", range(3), ids=SEGMENTS)
def test_every_other_spelling_of_a_segment_is_refused(keys: Keys, alg: str, index: int) -> None:
    key = {"ES256": keys.es, "RS256": keys.rs, "Ed25519": keys.ed}[alg]
    validator = validator_for(key)
    token = with_loose_tails(key)
    assert validator.validate(token).subject == "user-1"
    segment = token.split(".")[index]
    spellings = respellings(segment)
    if not spellings:  # a 3072-bit RSA signature is 384 bytes, 512 characters: no unused bits
        assert (alg, index, len(segment) % 4) == ("RS256", 2, 0)
        return
    for spelling in spellings:
        assert lenient_b64decode(spelling) == lenient_b64decode(segment)  # the same bytes
        with pytest.raises(InvalidToken):
            validator.validate(replace(token, index, spelling))
    assert validator.validate(token).subject == "user-1"  # the genuine spelling still passes


@pytest.mark.parametrize("index", range(3), ids=SEGMENTS)
@pytest.mark.parametrize("extra", ["=", "==", "+", "/", " ", "%3D", "\n"])
def test_padding_and_foreign_characters_are_refused(keys: Keys, index: int, extra: str) -> None:
    validator = validator_for(keys.es)
    token = sign(keys.es, claims())
    segment = token.split(".")[index]
    for bad in (segment + extra, extra + segment, segment[:5] + extra + segment[5:]):
        with pytest.raises(InvalidToken):
            validator.validate(replace(token, index, bad))


@settings(max_examples=200, deadline=None)
@given(
    index=st.integers(0, 2),
    position=st.integers(0, 10_000),
    char=st.characters(codec="ascii") | st.sampled_from(B64URL),
)
def test_no_one_character_mutation_passes(keys: Keys, index: int, position: int, char: str) -> None:
    validator = validator_for(keys.es)
    token = with_loose_tails(keys.es)
    segment = token.split(".")[index]
    at = position % len(segment)
    mutated = replace(token, index, segment[:at] + char + segment[at + 1 :])
    if mutated == token:
        return
    with pytest.raises(InvalidToken):
        validator.validate(mutated)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=40))
def test_core_decoder_takes_exactly_the_canonical_spelling(data: bytes) -> None:
    text = b64url(data)
    assert b64url_is_canonical(text) and b64url_decode(text) == data
    for spelling in respellings(text):
        assert not b64url_is_canonical(spelling)
        with pytest.raises(ValueError):
            b64url_decode(spelling)
    with pytest.raises(ValueError):
        b64url_decode(base64.urlsafe_b64encode(data).decode() + ("" if len(data) % 3 else "="))


@pytest.mark.parametrize("index", range(3), ids=SEGMENTS)
def test_the_server_refuses_the_same_spellings(keys: Keys, index: int) -> None:
    """Case 66 "at the server and the guard alike": the server's verifier (client assertions,
    ID token hints) is joserfc behind ``jose.jws``, whose header check is ``b64url_decode``."""
    from tokensmith.jose.jws import InvalidSignature, verify_jwt

    verification = {keys.es.kid: verification_key_from_jwk(keys.es.public_jwk())}
    token = with_loose_tails(keys.es, header_pad="cty")
    assert verify_jwt(token, verification)[1]["sub"] == "user-1"
    for spelling in respellings(token.split(".")[index]):
        with pytest.raises(InvalidSignature):
            verify_jwt(replace(token, index, spelling), verification)


@pytest.mark.parametrize("index", range(2), ids=SEGMENTS[:2])
def test_a_segment_nested_past_the_recursion_limit_is_refused(keys: Keys, index: int) -> None:
    """json.loads raises RecursionError (no ValueError) for it: refused, never an exception
    the guard's callers do not expect."""
    validator = validator_for(keys.es)
    token = sign(keys.es, claims())
    with pytest.raises(InvalidToken):
        validator.validate(replace(token, index, b64url(b"[" * 2500)))
