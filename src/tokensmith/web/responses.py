"""JSON responses and protocol errors rendered in their own format (RFC 6749 §5.2)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from tokensmith.core.fast_json import dumps
from tokensmith.errors import OAuthError, TooManyRequests

__all__ = ["error_response", "json_response"]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # Compact UTF-8, through orjson (core/fast_json.py): a token response in 1 µs, not 3.
    return Response(dumps(body), status, headers=headers, media_type="application/json")


def error_response(error: OAuthError, headers: dict[str, str] | None = None) -> Response:
    body = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    if isinstance(error, TooManyRequests):
        headers = {**(headers or {}), "retry-after": str(error.retry_after)}
    elif error.status == 503:
        # A dependency away (a database, Redis for DPoP records): worth retrying, shortly.
        headers = {"retry-after": "5", **(headers or {})}
    return json_response(body, error.status, headers)
