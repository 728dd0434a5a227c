"""core/: sealing, secrets, durations, scopes."""

from __future__ import annotations

import pytest

from tokensmith.core.durations import format_duration, parse_duration
from tokensmith.core.scopes import format_scope, parse_scope
from tokensmith.core.sealing import MasterKey, SealError, generate_master_key
from tokensmith.core.secrets import (
    b64url_decode,
    constant_time_equals,
    fingerprint,
    keyed_hash,
    random_token,
)


def test_sealed_value_opens_only_with_its_key_and_context() -> None:
    key = MasterKey.from_text(generate_master_key())
    sealed = key.seal(b"private key", "signing_keys:a")
    assert b"private key" not in sealed
    assert key.unseal(sealed, "signing_keys:a") == b"private key"
    with pytest.raises(SealError):
        key.unseal(sealed, "signing_keys:b")  # copied into another row
    with pytest.raises(SealError):
        MasterKey.from_text(generate_master_key()).unseal(sealed, "signing_keys:a")


@pytest.mark.parametrize("position", [0, 5, 20, -1])
def test_altered_sealed_value_does_not_open(position: int) -> None:
    key = MasterKey.from_text(generate_master_key())
    sealed = bytearray(key.seal(b"secret", "ctx"))
    sealed[position] ^= 0x01
    with pytest.raises(SealError):
        key.unseal(bytes(sealed), "ctx")


def test_sealing_is_randomised() -> None:
    key = MasterKey.from_text(generate_master_key())
    assert key.seal(b"x", "c") != key.seal(b"x", "c")


@pytest.mark.parametrize(
    "text",
    ["", "short", "A" * 44, "!" * 43, generate_master_key()[:-1], " " * 43],
    # Named, not shown: a random value in a test id differs between xdist workers, which then
    # refuse to run a suite they did not collect alike.
    ids=["empty", "short", "too-long", "not-base64url", "one-short", "blank"],
)
def test_malformed_master_key_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="32 random bytes"):
        MasterKey.from_text(text)


def test_master_key_never_prints_its_material() -> None:
    text = generate_master_key()
    key = MasterKey.from_text(text)
    assert text not in repr(key) and text not in str(key)


def test_pepper_is_derived_not_the_master_key() -> None:
    text = generate_master_key()
    assert MasterKey.from_text(text).pepper != b64url_decode(text)


def test_keyed_hash_depends_on_the_pepper() -> None:
    assert keyed_hash(b"a" * 32, "secret") != keyed_hash(b"b" * 32, "secret")
    assert len(keyed_hash(b"a" * 32, "secret")) == 32


def test_random_tokens_carry_prefix_and_256_bits() -> None:
    token = random_token(32, "tscs_")
    assert token.startswith("tscs_") and len(b64url_decode(token[5:])) == 32
    assert random_token() != random_token()


def test_constant_time_equals_and_fingerprint() -> None:
    assert constant_time_equals("abc", b"abc") and not constant_time_equals("abc", "abd")
    assert fingerprint("token") == fingerprint("token") and "token" not in fingerprint("token")


@pytest.mark.parametrize("bad", ["", "a", "ab=", "a b", "ab+/"])
def test_b64url_is_strict(bad: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000), ("2w", 1209600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "1y", "-5s", "5 days", "1.5h", "h"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (3600, 86400, 90, 120)] == ["1h", "1d", "90s", "2m"]


def test_scopes_parse_and_format() -> None:
    assert parse_scope("b a") == {"a", "b"} and format_scope({"b", "a"}) == "a b"
    assert parse_scope("") == frozenset() and parse_scope(None) == frozenset()


@pytest.mark.parametrize("bad", ['a"b', "a\\b", "a  b", "a\nb", "é", "x" * 129])
def test_bad_scopes(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_scope(bad)


def test_an_address_is_counted_as_itself_or_its_ipv6_64() -> None:
    from tokensmith.core.addresses import address_bucket

    assert address_bucket("203.0.113.9") == "203.0.113.9"
    assert address_bucket("::ffff:203.0.113.9") == "203.0.113.9"
    assert address_bucket("2001:db8:0:7::1") == address_bucket("2001:db8:0:7:ffff:1:2:3")
    assert address_bucket("2001:db8:0:7::1") == "2001:db8:0:7::/64"
    assert address_bucket("2001:db8:0:8::1") != address_bucket("2001:db8:0:7::1")
    assert address_bucket("unknown") == "unknown"
    assert address_bucket("x" * 500) == "x" * 64
