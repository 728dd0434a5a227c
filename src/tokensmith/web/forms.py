"""Reading form and JSON request bodies safely: size first, then parse."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request

from tokensmith.core.content_length import declared_too_large
from tokensmith.errors import InvalidRequest, PayloadTooLarge
from tokensmith.oauth.params import MAX_PARAMETERS, Params

__all__ = ["has_body", "read_form", "read_json"]

FORM = "application/x-www-form-urlencoded"


def has_body(request: Request) -> bool:
    """Whether the request says it carries a body (a length above 0, or chunked)."""
    headers = request.headers
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


async def read_form(request: Request, max_bytes: int) -> Params:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM:
        raise InvalidRequest(f"the request body must be {FORM}")
    body = await _read_capped(request, max_bytes)
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PARAMETERS)
    except UnicodeDecodeError:
        raise InvalidRequest("the request body is not UTF-8") from None
    except ValueError:
        raise InvalidRequest(f"more than {MAX_PARAMETERS} parameters") from None
    return Params(pairs)


async def _read_capped(request: Request, max_bytes: int) -> bytes:
    if declared_too_large(request.headers.get("content-length"), max_bytes):
        raise PayloadTooLarge(f"the request body is larger than {max_bytes} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():  # counted as it arrives: a lying length gains nothing
            body += chunk
            if len(body) > max_bytes:
                raise PayloadTooLarge(f"the request body is larger than {max_bytes} bytes")
    except ClientDisconnect:
        # The client went away (or the connection cut a slow body off): its doing, not a
        # server error, so no error line and no 500 in the metrics for whoever hangs up.
        raise InvalidRequest("the request body was cut off") from None
    return bytes(body)


JSON = "application/json"
MAX_JSON_DEPTH = 8


async def read_json(request: Request, max_bytes: int) -> Any:
    """A JSON body, size-capped before parsing and refused when nested deeper than is useful."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON:
        raise InvalidRequest(f"the request body must be {JSON}")
    body = await _read_capped(request, max_bytes)
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise InvalidRequest(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` deep. It looks at most ``limit`` levels down:
    the parser accepts nesting far deeper than Python's recursion limit leaves room for once a
    request is on the stack, so a recursive count would overflow."""
    level = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return any(isinstance(item, dict | list) for item in level)
