"""What wraps every request: request id, security headers, access log, metrics, last-resort errors.

Pure ASGI, not BaseHTTPMiddleware: the hot path pays one function call, not a task per request.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokensmith.adapters.logs import ACCESS_LOG, request_id_var
from tokensmith.audit.trail import Origin, request_origin
from tokensmith.core.forwarded import NO_PROXIES, TrustedProxies, apply_source
from tokensmith.core.labels import LabelledChildren
from tokensmith.core.secrets import redact_secrets
from tokensmith.errors import (
    HeadersTooLarge,
    InvalidRequest,
    OAuthError,
    ServerError,
    TemporarilyUnavailable,
)
from tokensmith.runtime.faults import is_unavailable
from tokensmith.runtime.metrics import HTTP_LATENCY, HTTP_REQUESTS
from tokensmith.web.responses import error_response

__all__ = ["Envelope", "classify"]

log = logging.getLogger("tokensmith.http")
_REQUESTS = LabelledChildren(HTTP_REQUESTS)
_LATENCY = LabelledChildren(HTTP_LATENCY)
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 32 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Credentials that must never travel in a URL (RFC 6750 §2.3, RFC 9700 §4.3.2, RFC 6749 §2.3.1).
_CREDENTIALS_IN_QUERY = frozenset(
    {"access_token", "refresh_token", "client_secret", "api_key", "apikey", "device_code"}
)
_API_KEY_PREFIX = "tsk_"
# Every other secret we mint under any parameter name: a client secret, a refresh token, an opaque
# access token, a code or a device code. The type prefix followed by a run of token characters is
# unmistakable.
_SECRET_IN_QUERY = re.compile(r"(?:tscs|tsrt|tsat|tsac|tsdc)_[A-Za-z0-9_-]{16}")

_BASE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
# Set unless the route set its own.
_DEFAULT_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


class Envelope:
    def __init__(self, app: ASGIApp, *, https: bool, proxies: TrustedProxies = NO_PROXIES) -> None:
        self.app = app
        self.https = https
        self.proxies = proxies
        # Ours whatever the route said: any of these a route set is replaced.
        self._fixed = _BASE_HEADERS + ((_HSTS,) if https else ())
        self._replaced = frozenset(name for name, _ in self._fixed) | {b"x-request-id"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The client's address and scheme are settled first, so this log, the audit trail,
        # lockouts and API-key ranges all see the same one: the socket peer unless a declared
        # proxy vouches for more (core/forwarded.py).
        apply_source(scope, self.proxies)
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        origin = request_origin.set(_origin(scope, request_id))
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                # Raw (name, value) pairs, names lower-case as ASGI has them: a MutableHeaders
                # here cost a scan of the list per header set.
                headers = list(message.get("headers", ()))
                present = {name for name, _ in headers}
                if not present.isdisjoint(self._replaced):
                    headers = [pair for pair in headers if pair[0] not in self._replaced]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                headers.extend(self._fixed)
                headers.extend(pair for pair in _DEFAULT_HEADERS if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        try:
            refusal = _refuse_oversized_headers(scope) or _refuse_credentials_in_query(scope)
            if refusal is not None:
                await error_response(refusal)(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # the last resort: never a traceback to the client
            error = classify(exc)
            log.error(
                "request failed",
                exc_info=exc,
                extra={"error_code": error.error, "path": redact_secrets(scope["path"])},
            )
            if not response_started:
                headers = {"retry-after": "5"} if error.status == 503 else None
                await error_response(error, headers)(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            _REQUESTS(template, scope["method"], str(status)).inc()
            _LATENCY(template).observe(elapsed)
            ACCESS_LOG.add(
                "request",
                {
                    "method": scope["method"],
                    # Never the query string, and no secret a client put in the path.
                    "path": redact_secrets(scope["path"]),
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "client": (scope.get("client") or ("-",))[0],
                },
                request_id=request_id,
            )
            request_id_var.reset(token)
            request_origin.reset(origin)


def _origin(scope: Scope, request_id: str) -> Origin:
    """Peer address, user agent and request id for the audit trail; the agent is free text."""
    client = scope.get("client")
    agent = next((v for k, v in scope["headers"] if k == b"user-agent"), None)
    return Origin(
        client[0] if client else None,
        agent.decode("latin-1")[:256] if agent is not None else None,
        request_id,
    )


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _REQUEST_ID.match(candidate):
                return candidate
            break
    return secrets.token_hex(12)


def _refuse_oversized_headers(scope: Scope) -> OAuthError | None:
    """Checked here because not every uvicorn HTTP parser enforces a header limit itself."""
    total = 0
    for name, value in scope["headers"]:
        if len(value) > MAX_HEADER_BYTES:
            return HeadersTooLarge(f"the {name.decode('latin-1')[:40]} header is too large")
        total += len(name) + len(value)
    if total > MAX_HEADERS_BYTES:
        return HeadersTooLarge("the request headers are too large")
    return None


def _refuse_credentials_in_query(scope: Scope) -> OAuthError | None:
    query = scope.get("query_string", b"")
    if not query:
        return None
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    found = {name for name, _ in pairs} & _CREDENTIALS_IN_QUERY
    if found:
        return InvalidRequest(
            f"'{sorted(found)[0]}' is never accepted in a URL; send credentials in a header or body"
        )
    # An API key under any name: its prefix is unmistakable, and a URL ends up in logs.
    if any(_API_KEY_PREFIX in value for _, value in pairs):
        return InvalidRequest("an API key is never accepted in a URL; send it in X-API-Key")
    if any(_SECRET_IN_QUERY.search(value) for _, value in pairs):
        return InvalidRequest("a secret or token is never accepted in a URL; send it in the body")
    return None


def classify(exc: Exception) -> OAuthError:
    if isinstance(exc, OAuthError):
        return exc
    if is_unavailable(exc):
        return TemporarilyUnavailable("the service is temporarily unavailable; retry shortly")
    return ServerError("an unexpected error occurred; it has been logged")
