"""A compact JWS taken apart once (RFC 7515 §7.1): its shape, each segment's bytes, its JSON.

The shape check is cheap character searches, not a regex over the whole token: ASCII, exactly two
dots, no empty segment, and none of ``+``, ``/`` or ``=``, the only characters outside the
base64url alphabet that ``a2b_base64`` would take once ``-_`` are mapped to ``+/``. Every other
character outside the alphabet is refused by the strict decode each segment goes through before
any use (``segment_bytes``), the header's before it is judged, the signature's and the claims'
before the signature is checked. A token is therefore refused before any cryptography unless
all three segments are canonical base64url (SECURITY.md cases 10, 66).
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from typing import Any

from tokensmith.core.secrets import b64url_is_canonical
from tokensmith.guard.errors import InvalidToken

__all__ = ["json_object", "segment_bytes", "segment_object", "split_jws"]

_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_PADDING = ("", "", "==", "=")  # by length % 4; 1 is no base64 (refused as non-canonical first)
_decode_json = json.JSONDecoder().decode
_fast_loads: Callable[[bytes], Any] | None
try:
    from orjson import loads as _fast_loads  # the server's extras; the guard's base install: json
except ImportError:  # pragma: no cover - a base install
    _fast_loads = None


def split_jws(token: str) -> tuple[str, str, str] | None:
    """Header, payload and signature segments, or None for anything that is no compact JWS."""
    if not token.isascii() or "+" in token or "/" in token or "=" in token:
        return None
    first, last = token.find("."), token.rfind(".")
    if first < 1 or last - first < 2 or last == len(token) - 1:
        return None  # fewer than two dots, or an empty segment
    body = token[first + 1 : last]
    if "." in body:
        return None
    return token[:first], body, token[last + 1 :]


def segment_bytes(segment: str, what: str) -> bytes:
    """The bytes of one segment split_jws returned; InvalidToken unless strict and canonical."""
    # a2b_base64 is the C fast path. It ignores unused trailing bits, so the one spelling of a
    # segment is checked first (SECURITY.md case 66, the rule the server's decoders apply).
    if not b64url_is_canonical(segment):
        raise InvalidToken(f"the token's {what} is not canonical base64url")
    try:
        data = (segment + _PADDING[len(segment) & 3]).encode("ascii").translate(_FROM_URLSAFE)
        return binascii.a2b_base64(data, strict_mode=True)  # any other character: refused
    except (binascii.Error, ValueError):
        raise InvalidToken(f"the token's {what} is not base64url") from None


def segment_object(segment: str, what: str) -> dict[str, Any]:
    return json_object(segment_bytes(segment, what), what)


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """The JSON object a segment's bytes spell; InvalidToken for anything else."""
    try:
        value = _loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting is no JSON we read
        raise InvalidToken(f"the token's {what} is not JSON") from None
    if type(value) is not dict:
        raise InvalidToken(f"the token's {what} is not a JSON object")
    return value


def _loads(data: bytes) -> Any:
    """JSON from UTF-8 bytes: orjson reads a claim set in a third of the time, where installed.

    Whatever orjson refuses (NaN, a lone surrogate, nesting past 1,024 levels, a number beyond a
    double) the standard library decides, as before; where orjson accepts, ``json`` reads the
    same value (tests/guard/test_segments.py compares the two on arbitrary input), but for an
    integer beyond 64 bits, which orjson reads as the nearest float: for ``exp``, ``nbf`` and
    ``iat`` the same verdict, and no issuer of ours writes one elsewhere.
    """
    if _fast_loads is not None:
        try:
            return _fast_loads(data)
        except ValueError:  # orjson.JSONDecodeError
            pass
    return _decode_json(data.decode("utf-8"))
