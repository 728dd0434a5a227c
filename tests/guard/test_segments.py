"""guard/segments.py: the shape check without a regex, the strict segment decode, and orjson
read against the standard library it stands in for (SECURITY.md cases 10, 11, 66)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.guard.forge import AUDIENCE, ISSUER, b64, claims, new_key, sign
from tokensmith.guard import InvalidToken, JwtValidator, PinnedKey, StaticKeys, pin, segments
from tokensmith.guard.segments import json_object, segment_bytes, split_jws
from tokensmith.jose.keys import verification_key_from_jwk

# The regex the validator used before: the shape every accepted token has.
JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Near misses: the alphabet, the dot, standard base64's own characters, padding, whitespace,
# NUL, percent-encoding, and letters that look ASCII but are not.
NEAR = st.text(st.sampled_from(B64URL + ".+/= \t\n\x00%\u0131\u212a\uff21"), max_size=60)


def counting_validator() -> tuple[JwtValidator, list[bytes]]:
    """A validator whose one key records every signature check it is asked for."""
    checked: list[bytes] = []
    real = pin(verification_key_from_jwk(new_key().public_jwk()))

    def verify(data: bytes, signature: bytes) -> bool:
        checked.append(data)
        return False

    keys = StaticKeys([PinnedKey(real.kid, real.alg, verify)])
    return JwtValidator(keys, issuer=ISSUER, audiences=[AUDIENCE]), checked


@pytest.mark.parametrize(
    "token",
    ["", ".", "..", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.", "a.b.c+", "a/b.c.d", "a.b=.c",
     "a.b\u0131.c", "a.\uff21.c"],
)  # fmt: skip
def test_split_refuses_what_is_no_compact_jws(token: str) -> None:
    assert split_jws(token) is None


@pytest.mark.parametrize("bad", ["\n", " ", "\t", "\x00", "%", "*", "~", "\x7f"])
@pytest.mark.parametrize("index", range(3))
def test_other_foreign_characters_are_refused_before_any_signature_check(
    bad: str, index: int
) -> None:
    """split_jws leaves them to the strict decode of their segment, which runs first."""
    validator, checked = counting_validator()
    parts = sign(new_key(), claims()).split(".")
    parts[index] = parts[index][:4] + bad + parts[index][4:]
    with pytest.raises(InvalidToken):
        validator.validate(".".join(parts))
    assert checked == []


def test_split_returns_the_three_segments() -> None:
    assert split_jws("aa.bb.cc") == ("aa", "bb", "cc")


@settings(max_examples=500, deadline=None)
@given(head=NEAR, body=NEAR, sig=NEAR)
@example(head="eyJ", body="e30", sig="QQ=")  # padded to a valid length by our own padding
@example(head="eyJ", body="e3 0", sig="QQ")
def test_nothing_outside_the_old_shape_reaches_a_signature_check(
    head: str, body: str, sig: str
) -> None:
    """Whatever the old regex refused is refused now, before any cryptography runs."""
    validator, checked = counting_validator()
    token = f"{head}.{body}.{sig}"
    if JWS.fullmatch(token):
        return
    with pytest.raises(InvalidToken):
        validator.validate(token)
    assert checked == []


@settings(max_examples=300, deadline=None)
@given(text=NEAR)
def test_segment_bytes_take_only_canonical_base64url(text: str) -> None:
    """Of any segment split_jws lets through, only the one spelling of some bytes decodes."""
    split = split_jws(f"a.{text}.b")
    if split is None:
        return
    try:
        decoded = segment_bytes(split[1], "claims")
    except InvalidToken:
        return
    assert re.fullmatch(r"[A-Za-z0-9_-]*", text)
    assert b64(decoded) == text  # one spelling: re-encoding gives the segment back


@pytest.mark.parametrize(
    "data",
    [b"[]", b'"x"', b"1", b"null", b"{", b'{"a":1}x', b"\xef\xbb\xbf{}", b'{"a":"\xff"}',
     b"[" * 3000, b'{"a":' * 1500, b'{"exp":NaN}'],
)  # fmt: skip
def test_json_object_refuses_anything_but_an_object(data: bytes) -> None:
    if data == b'{"exp":NaN}':  # json reads NaN, so it is an object; _number refuses the value
        assert json_object(data, "claims") == {"exp": pytest.approx(float("nan"), nan_ok=True)}
        return
    with pytest.raises(InvalidToken):
        json_object(data, "claims")


JSON_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a:
        return b != b  # NaN
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=400, deadline=None)
@given(value=JSON_TEXT, ascii_only=st.booleans())
def test_the_fast_reader_reads_what_json_reads(value: Any, ascii_only: bool) -> None:
    data = json.dumps({"v": value}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        with pytest.raises(InvalidToken):
            json_object(data, "claims")
        return
    assert _same(json_object(data, "claims"), expected)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
def test_on_arbitrary_bytes_the_fast_reader_agrees_with_json(data: bytes) -> None:
    try:
        expected: Any = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        expected = InvalidToken
    if not isinstance(expected, dict):
        with pytest.raises(InvalidToken):
            json_object(data, "claims")
        return
    assert _same(json_object(data, "claims"), expected)


def test_without_orjson_the_standard_library_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard's base install has no orjson."""
    monkeypatch.setattr(segments, "_fast_loads", None)
    assert json_object(b'{"a":[1,2.5,"\\ud800"]}', "claims") == {"a": [1, 2.5, "\ud800"]}
    with pytest.raises(InvalidToken):
        json_object(b"[" * 3000, "claims")
    key = new_key()
    validator = JwtValidator(
        StaticKeys([pin(verification_key_from_jwk(key.public_jwk()))]),
        issuer=ISSUER,
        audiences=[AUDIENCE],
    )
    assert validator.validate(sign(key, claims())).subject == "user-1"


def test_values_orjson_refuses_are_read_by_json() -> None:
    """A lone surrogate, a number beyond a double: json decides, as before."""
    assert json_object(b'{"s":"\\ud800"}', "claims") == {"s": "\ud800"}
    assert json_object(b'{"exp":1e400}', "claims") == {"exp": float("inf")}
