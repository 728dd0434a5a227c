"""The API-key shape: scanner-friendly, checksummed, parsed offline."""

from __future__ import annotations

import zlib

import pytest

from tokensmith.apikeys.format import KEY_LENGTH, KEY_PATTERN, generate_api_key, parse_api_key

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def test_a_generated_key_parses_back_to_itself() -> None:
    key = generate_api_key("live")
    parsed = parse_api_key(key.text)
    assert parsed == key
    assert key.text.startswith(f"tsk_live_{key.key_id}_")
    assert len(key.text) == KEY_LENGTH == 71
    assert KEY_PATTERN.fullmatch(key.text)


def test_the_environment_is_part_of_the_prefix() -> None:
    assert generate_api_key("test").text.startswith("tsk_test_")
    assert parse_api_key(generate_api_key("test").text).env == "test"  # type: ignore[union-attr]


def test_keys_are_distinct_and_use_the_whole_alphabet() -> None:
    keys = [generate_api_key("live") for _ in range(300)]
    assert len({k.text for k in keys}) == len({k.key_id for k in keys}) == 300
    secrets_part = "".join(k.text.split("_")[3][:43] for k in keys)
    assert set(secrets_part) == set(ALPHABET)  # 12,900 draws from 62 symbols: all appear


def test_the_secret_carries_at_least_256_bits() -> None:
    import math

    assert 43 * math.log2(62) >= 256


def test_the_key_repr_never_shows_the_secret() -> None:
    key = generate_api_key("live")
    secret = key.text.split("_")[3]
    assert secret not in repr(key) and secret not in str(key)


def test_every_single_character_change_breaks_the_checksum() -> None:
    text = generate_api_key("live").text
    body_start = len("tsk_live_")
    for index in range(body_start, len(text)):
        if text[index] == "_":
            continue
        for replacement in "0aZ":
            if replacement == text[index]:
                continue
            typo = text[:index] + replacement + text[index + 1 :]
            assert parse_api_key(typo) is None, (index, replacement)


def test_swapped_neighbours_break_the_checksum() -> None:
    text = generate_api_key("live").text
    for index in range(len("tsk_live_") + 13, len(text) - 1):
        if text[index] != text[index + 1]:
            swapped = text[:index] + text[index + 1] + text[index] + text[index + 2 :]
            assert parse_api_key(swapped) is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: "",
        lambda t: t[:-1],
        lambda t: t + "0",
        lambda t: t.replace("tsk_", "tsx_", 1),
        lambda t: t.replace("_live_", "_prod_", 1),
        lambda t: t.replace("_live_", "_LIVE_", 1),
        lambda t: t.upper(),
        lambda t: " " + t[1:],
        lambda t: t[:-6] + "-" * 6,
        lambda t: t.replace("_", "-"),
        lambda t: t[:20] + "é" + t[21:],
        lambda t: t * 100,
    ],
)
def test_malformed_keys_are_refused(mutate: object) -> None:
    text = generate_api_key("live").text
    assert parse_api_key(mutate(text)) is None  # type: ignore[operator]


def test_a_key_invented_without_the_checksum_is_refused() -> None:
    body = "tsk_live_AAAAAAAAAAAA_" + "B" * 43
    assert parse_api_key(body + "000000") is None
    value = zlib.crc32(body.encode())
    digits = ""
    for _ in range(6):
        value, rest = divmod(value, 62)
        digits = ALPHABET[rest] + digits
    assert parse_api_key(body + digits) is not None  # the checksum is public: not a secret
