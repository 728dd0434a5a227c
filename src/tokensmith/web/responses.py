"""JSON responses and protocol errors rendered in their own format (RFC 6749 §5.2)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from tokensmith.errors import OAuthError, TooManyRequests

__all__ = ["error_response", "json_response"]

# One encoder for every response: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    payload = _encode(body).encode()
    return Response(payload, status, headers=headers, media_type="application/json")


def error_response(error: OAuthError, headers: dict[str, str] | None = None) -> Response:
    body = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    if isinstance(error, TooManyRequests):
        headers = {**(headers or {}), "retry-after": str(error.retry_after)}
    return json_response(body, error.status, headers)
