"""core/fast_json.py: orjson's bytes are the standard library's, and what orjson refuses the
standard library still encodes."""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

import orjson  # noqa: F401  (the server's extras install it: missing, this file fails)
import pytest

from tokensmith.core import fast_json
from tokensmith.core.fast_json import dumps, dumps_text

SAMPLES: list[Any] = [
    {"access_token": "eyJ.x.y", "token_type": "Bearer", "expires_in": 300, "scope": "a b"},
    {"active": False},
    {"z": 1, "a": 2, "m": [3, 2, 1]},  # key order kept, not sorted
    {"name": "Zoë 😀 日本", "line": "\u2028\u2029", "bom": "\ufeff"},
    {"escapes": 'quote " backslash \\ slash / \b\f\n\r\t \x00 \x1f \x7f'},
    {"ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1], "bools": [True, False, None]},
    {"floats": [0.0, -0.5, 0.001, 1.315, 123.456, 1e15]},
    {"nested": {"a": {"b": {"c": [{"d": []}, {}]}}}},
    [],
    "text",
    17,
]


def stdlib(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("value", SAMPLES)
def test_the_bytes_are_the_standard_librarys(value: Any) -> None:
    assert dumps(value) == stdlib(value)
    assert dumps_text(value) == stdlib(value).decode()
    assert dumps_text(value, str) == stdlib(value).decode()


def test_a_float_with_an_exponent_is_the_same_number_spelt_shorter() -> None:
    value = {"tiny": 1e-7, "huge": 1e300, "third": 1 / 3}
    assert dumps(value) == b'{"tiny":1e-7,"huge":1e+300,"third":0.3333333333333333}'
    assert json.loads(dumps(value)) == value


@pytest.mark.parametrize(
    "value",
    [
        {"big": 2**64},  # beyond orjson's 64 bits
        {"small": -(2**63) - 1},
        {1: "int key", None: "none key", 2.5: "float key"},  # json turns these into strings
        {"deep": json.loads("[" * 300 + "]" * 300)},  # past orjson's nesting limit
    ],
)
def test_what_orjson_refuses_the_standard_library_encodes(value: Any) -> None:
    assert dumps(value) == stdlib(value)
    assert dumps_text(value) == stdlib(value).decode()


def test_a_lone_surrogate_stays_in_text_for_the_stream_to_escape() -> None:
    value = {"path": "/x\udc80"}
    assert dumps_text(value) == stdlib_text(value)
    with pytest.raises(UnicodeEncodeError):  # as before: a response body must be UTF-8
        dumps(value)


def stdlib_text(value: Any, default: Any = None) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=default)


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),  # str(): a space, not "T"
        datetime.date(2026, 1, 2),
        Point(1),  # str(): its repr, not a dict
        ValueError("boom"),
        b"bytes",
    ],
)
def test_default_sees_what_json_has_no_type_for_as_json_would(value: Any) -> None:
    entry = {"value": value, "n": 1}
    assert dumps_text(entry, str) == stdlib_text(entry, str)
    with pytest.raises(TypeError):  # without a default: refused, as json refuses it
        dumps(entry)


def test_without_orjson_the_standard_library_gives_the_same_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = [(dumps(v), dumps_text(v, str)) for v in SAMPLES]
    monkeypatch.setattr(fast_json, "_orjson_dumps", None)
    assert [(dumps(v), dumps_text(v, str)) for v in SAMPLES] == expected
    assert dumps_text({"when": datetime.date(2026, 1, 2)}, str) == '{"when":"2026-01-02"}'
