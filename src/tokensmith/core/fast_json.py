"""JSON out, compact and UTF-8: orjson where an extra installs it, the standard library otherwise.

The hot path's JSON (token and introspection responses, log lines, JWT payloads) goes through
here. For what those carry (str keys; str, int, float, bool, None, lists and dicts) orjson writes
the bytes ``json`` writes with ``separators=(",", ":"), ensure_ascii=False``, in key order, in
about a twentieth of the time. Whatever orjson refuses, the standard library encodes as before: an
int beyond 64 bits, a non-str key, a lone surrogate, nesting past 254 levels. datetimes and
dataclasses, which orjson would encode itself and ``json`` would not, go to ``default`` (or fail)
as they did. Two differences remain: a float with an exponent is spelt shorter (``1e-7``, not
``1e-07``: the same number), and a NaN or infinite float is ``null``, not ``json``'s ``NaN``, which
no JSON parser accepts. The guard's base install (``pip install tokensmith``) has
no orjson.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "dumps_text"]

Default = Callable[[Any], Any]
_orjson_dumps: Callable[..., bytes] | None
try:
    import orjson
except ImportError:  # the guard's base install
    _orjson_dumps, _OPTIONS = None, 0
else:
    _orjson_dumps = orjson.dumps
    _OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

# One encoder for the plain case: json.dumps with options builds a new one per call.
_stdlib = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(value, None, _OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: the standard library decides
            pass
    return _stdlib(value).encode()


def dumps_text(value: Any, default: Default | None = None) -> str:
    """``value`` as compact JSON text; ``default`` turns what JSON has no type for into one. A
    lone surrogate stays in the text, for the stream's error handler to escape, as before."""
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(value, default, _OPTIONS).decode()
        except TypeError:
            pass
    if default is None:
        return _stdlib(value)
    return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=default).encode(
        value
    )
