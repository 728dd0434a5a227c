"""The reverse proxy: admit (route, credential, scopes, rate), then stream to the upstream with
a transaction token (``tokens.py``, ``txn_exchange.py``) in place of the outside credential.

Pure ASGI with one pooled ``httpx.AsyncClient``; request and response bodies are streamed, never
buffered. Every refusal is JSON with ``error`` and ``error_description``, and is counted in
``/metrics`` by reason. An upstream that cannot be reached is 502 (504 on a timeout) with our own
body: nothing of the upstream's leaks, and the outside credential never leaves the gateway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx

from tokensmith.core.asgi import Receive, Scope, Send, serve_lifespan
from tokensmith.core.challenges import render_challenge
from tokensmith.core.content_length import declared_too_large
from tokensmith.core.forwarded import apply_source
from tokensmith.core.proxy_headers import downstream_headers, upstream_headers
from tokensmith.core.proxy_paths import path_is_forwardable
from tokensmith.core.secrets import bearer_matches
from tokensmith.errors import OAuthError
from tokensmith.gateway.access import Exchange
from tokensmith.gateway.config import GatewayConfig, Route
from tokensmith.gateway.metrics import GatewayMetrics
from tokensmith.gateway.ratelimit import RateLimiter
from tokensmith.gateway.tokens import TxnRequest, TxnTokenSource
from tokensmith.guard.asgi import proof_context, read_scope_credential
from tokensmith.guard.credentials import Credential
from tokensmith.guard.errors import (
    ForbiddenSource,
    GuardError,
    InsufficientScope,
    InvalidRequest,
    MissingCredential,
    RateLimited,
    ServiceUnavailable,
    TokenExpired,
    render,
)
from tokensmith.guard.guard import Guard
from tokensmith.guard.principal import Principal

__all__ = ["Gateway"]

log = logging.getLogger("tokensmith.gateway")


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_SAFE_PATH = "/:@!$&'()*+,;=-._~"


class Refusal(OAuthError):
    """A gateway-side answer that is not about the credential (no route, too large, upstream).

    ``code`` is a row of ``tokensmith.errors.ERROR_CODES`` (the status comes from there);
    ``reason`` is what the access log and ``/metrics`` count it under."""

    def __init__(self, code: str, description: str, reason: str) -> None:
        super().__init__(description, code=code)
        self.reason = reason


class _BodyTooLarge(Exception):
    pass


class _ClientTooSlow(Exception):
    pass


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        guard: Guard,
        tokens: TxnTokenSource,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.guard = guard
        self.tokens = tokens
        self.metrics = GatewayMetrics()
        self.clients = RateLimiter(
            config.client_rate_per_minute, max_buckets=config.rate_limit_buckets
        )
        self.keys = RateLimiter(config.key_rate_per_minute, max_buckets=config.rate_limit_buckets)
        timeout = httpx.Timeout(config.upstream_timeout, connect=min(5.0, config.upstream_timeout))
        self.client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, limits=httpx.Limits(max_connections=512)
        )
        self._jwks = json.dumps(tokens.jwks()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        apply_source(scope, self.config.trusted_proxies)  # before anything reads the client
        client = scope.get("client")
        exchange = Exchange(
            _request_id(scope), scope["method"], scope["path"], client[0] if client else "-"
        )
        try:
            await self._handle(scope, receive, exchange.recording(send), exchange)
        finally:
            exchange.write()

    async def _handle(self, scope: Scope, receive: Receive, send: Send, exchange: Exchange) -> None:
        if scope["path"] == "/metrics":
            await self._metrics(scope, send, exchange)
            return
        local = self._local(scope["path"])
        if local is not None:
            exchange.reason = "local"
            await _send_json(send, 200, local[1], exchange.request_id, local[0])
            return
        try:
            route = self._route(scope)
            exchange.route = route.path
            principal, credential = await self._admit(scope, route)
            token = await self._txn_token(scope, route, principal, credential)
        except GuardError as error:
            exchange.reason = _reason(error)
            self.metrics.refused(exchange.reason)
            status, headers, body = render(error, self.guard.realm)
            await _send(send, status, headers, body, exchange.request_id)
            return
        except Refusal as refusal:
            await self._refuse(send, refusal, exchange)
            return
        self.metrics.allowed()
        await self._forward(scope, receive, send, route, token, exchange)

    def _local(self, path: str) -> tuple[str, bytes] | None:
        if path == "/healthz":
            return "application/json", b'{"status":"ok"}'
        if path == "/.well-known/jwks.json":
            return "application/jwk-set+json", self._jwks
        return None

    async def _metrics(self, scope: Scope, send: Send, exchange: Exchange) -> None:
        """Only for the bearer of gateway.metrics_token; unset, not served (SECURITY.md 67)."""
        token = self.config.metrics_token
        if token is None:
            refusal = Refusal("not_found", "no route for this path", "no_route")
            await self._refuse(send, refusal, exchange)
        elif not bearer_matches(_header(scope, b"authorization"), token):
            body = (
                b'{"error":"invalid_token","error_description":"/metrics needs the metrics token"}'
            )
            headers = [
                ("content-type", "application/json"),
                (
                    "www-authenticate",
                    render_challenge("Bearer", realm="metrics", error="invalid_token"),
                ),
            ]
            exchange.reason = "metrics_token"
            await _send(send, 401, headers, body, exchange.request_id)
        else:
            content_type = "text/plain; version=0.0.4; charset=utf-8"
            await _send_json(send, 200, self.metrics.render(), exchange.request_id, content_type)

    def _route(self, scope: Scope) -> Route:
        path: str = scope["path"]
        # Anything the upstream could read as another path than the one we match is refused.
        if not path_is_forwardable(path, scope.get("raw_path") or path.encode("utf-8")):
            raise Refusal("invalid_request", "the path is not allowed", "bad_path")
        route = self.config.route_for(path)
        if route is None:
            raise Refusal("not_found", "no route for this path", "no_route")
        if declared_too_large(_header(scope, b"content-length"), self.config.max_body_bytes):
            raise Refusal("payload_too_large", "the request body is too large", "body_too_large")
        return route

    async def _admit(self, scope: Scope, route: Route) -> tuple[Principal, Credential]:
        credential = read_scope_credential(self.guard, scope)
        client = scope.get("client")
        try:
            principal = await self.guard.authenticate(
                credential, client[0] if client else None, proof_context(scope)
            )
        except GuardError:
            raise
        except Exception as exc:  # fail closed, never open, never a traceback
            log.error("credential check crashed; refusing", extra={"error": type(exc).__name__})
            raise ServiceUnavailable("the credential cannot be checked right now") from None
        try:
            self.guard.require_audience(principal, route.token_audiences)  # this route's
        except GuardError as error:
            raise self.guard.marked(error, credential) from None
        self.guard.require(principal, route.scopes)
        if principal.kind == "api_key":
            wait = self.keys.take(f"key:{principal.token_id}")
        else:
            wait = self.clients.take(f"client:{principal.client_id or principal.subject}")
        if wait:
            raise RateLimited("too many requests; slow down", retry_after=wait)
        return principal, credential

    async def _txn_token(
        self, scope: Scope, route: Route, principal: Principal, credential: Credential
    ) -> str:
        client = scope.get("client")
        given = _caller_txn(scope, route)
        request = TxnRequest(
            principal=principal,
            credential=credential.value,
            credential_kind=credential.kind,
            trust_domain=route.audience,
            purpose=" ".join(sorted(route.scopes)) or route.path,
            txn=given or str(uuid.uuid4()),
            source_ip=client[0] if client else "",
            txn_from_caller=given is not None,
        )
        try:
            return await self.tokens.issue(request)
        except GuardError:
            raise
        except Exception as exc:  # fail closed: no token, no forwarding
            log.error("transaction token failed; refusing", extra={"error": type(exc).__name__})
            raise ServiceUnavailable("transaction tokens cannot be issued right now") from None

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        token: str,
        exchange: Exchange,
    ) -> None:
        request_id = exchange.request_id
        path: str = scope["path"]
        if route.strip_path and route.path != "/":
            path = path[len(route.path) :] or "/"
        url = route.upstream + quote(path, safe=_SAFE_PATH)
        query: bytes = scope.get("query_string", b"")
        if query:
            url += "?" + query.decode("latin-1")
        client = scope.get("client")
        headers = upstream_headers(
            scope["headers"],
            token,
            request_id,
            client[0] if client else "",
            scope.get("scheme", "http"),
        )
        declared = _header(scope, b"content-length")
        chunked = _header(scope, b"transfer-encoding") is not None
        if declared is not None:
            headers.append((b"content-length", declared.encode()))
        content = self._body(receive) if (declared not in (None, "0") or chunked) else b""
        request = self.client.build_request(scope["method"], url, headers=headers, content=content)
        try:
            response = await self.client.send(request, stream=True)
        except _BodyTooLarge:
            await self._refuse(
                send,
                Refusal("payload_too_large", "the request body is too large", "body_too_large"),
                exchange,
            )
            return
        except _ClientTooSlow:
            await self._refuse(
                send,
                Refusal("request_timeout", "the request body arrived too slowly", "slow_client"),
                exchange,
            )
            return
        except httpx.TimeoutException:
            await self._upstream_failed(
                send,
                Refusal(
                    "gateway_timeout",
                    "the upstream service did not answer in time",
                    "upstream_timeout",
                ),
                exchange,
            )
            return
        except httpx.HTTPError as exc:
            log.warning(
                "upstream unreachable",
                extra={"upstream": route.upstream, "error": type(exc).__name__},
            )
            await self._upstream_failed(
                send,
                Refusal(
                    "bad_gateway", "the upstream service is unavailable", "upstream_unavailable"
                ),
                exchange,
            )
            return
        await self._relay(send, response, exchange)

    async def _relay(self, send: Send, response: httpx.Response, exchange: Exchange) -> None:
        try:
            headers = downstream_headers(list(response.headers.raw), exchange.request_id)
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": headers}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except httpx.HTTPError as exc:  # the upstream broke off mid-body; the status is sent
            exchange.reason = "broken_response"
            self.metrics.upstream_errors.labels("broken_response").inc()
            log.warning("upstream response broke off", extra={"error": type(exc).__name__})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def _body(self, receive: Receive) -> AsyncIterator[bytes]:
        received = 0
        while True:
            try:  # a caller that stops sending must not hold an upstream connection open
                message = await asyncio.wait_for(receive(), self.config.client_timeout)
            except TimeoutError:
                raise _ClientTooSlow from None
            if message["type"] == "http.disconnect":
                raise httpx.ReadError("the client went away")
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > self.config.max_body_bytes:
                raise _BodyTooLarge
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def _upstream_failed(self, send: Send, refusal: Refusal, exchange: Exchange) -> None:
        exchange.reason = refusal.reason
        self.metrics.upstream_errors.labels(refusal.reason).inc()
        await _send_refusal(send, refusal, exchange.request_id)

    async def _refuse(self, send: Send, refusal: Refusal, exchange: Exchange) -> None:
        exchange.reason = refusal.reason
        self.metrics.refused(refusal.reason)
        await _send_refusal(send, refusal, exchange.request_id)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await serve_lifespan(receive, send, self.aclose)

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.guard.aclose()
        await self.tokens.aclose()


def _reason(error: GuardError) -> str:
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return error.error


_REASONS: tuple[tuple[type[GuardError], str], ...] = (
    (MissingCredential, "missing_credential"),
    (TokenExpired, "token_expired"),
    (InsufficientScope, "insufficient_scope"),
    (InvalidRequest, "invalid_request"),
    (ForbiddenSource, "forbidden_source"),
    (RateLimited, "rate_limited"),
    (ServiceUnavailable, "credential_check_unavailable"),
)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _caller_txn(scope: Scope, route: Route) -> str | None:
    """The caller's ``Txn-Id`` where the route trusts it; elsewhere it is dropped, unread."""
    given = _header(scope, b"txn-id") if route.trust_incoming_txn else None
    if given is None:
        return None
    if not _REQUEST_ID.match(given):
        raise Refusal(
            "invalid_request", "Txn-Id must be 8 to 64 of A-Z a-z 0-9 . _ -", "bad_txn_id"
        )
    return given


def _request_id(scope: Scope) -> str:
    given = _header(scope, b"x-request-id")
    return given if given is not None and _REQUEST_ID.match(given) else secrets.token_hex(12)


async def _send_refusal(send: Send, refusal: Refusal, request_id: str) -> None:
    body = json.dumps({"error": refusal.error, "error_description": refusal.description}).encode()
    await _send(send, refusal.status, [("content-type", "application/json")], body, request_id)


async def _send_json(
    send: Send, status: int, body: bytes, request_id: str, content_type: str
) -> None:
    await _send(send, status, [("content-type", content_type)], body, request_id)


async def _send(
    send: Send, status: int, headers: list[tuple[str, str]], body: bytes, request_id: str
) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw += [
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
