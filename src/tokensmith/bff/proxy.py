"""``/bff/api/<prefix>/...`` to its upstream, with the session's access token attached.

What crosses is ``core/proxy_headers.py``'s rule (no hop-by-hop header, no Authorization the
browser sent, nothing that could pose as the proxy; ``X-Tokensmith-*`` never), plus: the
browser's cookies stay here, and the upstream's ``Set-Cookie`` never reaches the browser. The
request body is read up to ``max_body_bytes`` before it is sent (a retry after a refresh must be
able to send it again); the response body is streamed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from tokensmith.bff.config import Upstream
from tokensmith.bff.http import Receive, Scope, Send
from tokensmith.core.proxy_headers import downstream_headers, upstream_headers

__all__ = ["BodyTooLarge", "ClientTooSlow", "Forwarder", "Outgoing", "rejected_token"]

_SAFE_PATH = "/:@!$&'()*+,;=-._~"
_NOT_UPSTREAM = frozenset({b"cookie", b"cookie2"})
_NOT_DOWNSTREAM = frozenset({b"set-cookie", b"set-cookie2"})


class BodyTooLarge(Exception):
    pass


class ClientTooSlow(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Outgoing:
    method: str
    url: str
    headers: list[tuple[bytes, bytes]]
    body: bytes


class Forwarder:
    def __init__(self, client: httpx.AsyncClient, max_body_bytes: int, client_timeout: float):
        self.client = client
        self.max_body_bytes = max_body_bytes
        self.client_timeout = client_timeout

    async def read_body(self, receive: Receive) -> bytes:
        body = b""
        while True:
            try:  # a browser that stops sending must not hold the request open
                message = await asyncio.wait_for(receive(), self.client_timeout)
            except TimeoutError:
                raise ClientTooSlow from None
            if message["type"] == "http.disconnect":
                raise ClientTooSlow
            chunk: bytes = message.get("body", b"")
            body += chunk
            if len(body) > self.max_body_bytes:
                raise BodyTooLarge
            if not message.get("more_body", False):
                return body

    def outgoing(self, scope: Scope, upstream: Upstream, body: bytes) -> Outgoing:
        rest = scope["path"][len(upstream.prefix) :]
        url = upstream.url + quote(rest, safe=_SAFE_PATH)
        query: bytes = scope.get("query_string", b"")
        if query:
            url += "?" + query.decode("latin-1")
        return Outgoing(scope["method"], url, list(scope["headers"]), body)

    async def send(
        self, outgoing: Outgoing, access_token: str, request_id: str, scope: Scope
    ) -> httpx.Response:
        client = scope.get("client")
        headers = upstream_headers(
            outgoing.headers,
            access_token,
            request_id,
            client[0] if client else "",
            scope.get("scheme", "http"),
            _NOT_UPSTREAM,
        )
        request = self.client.build_request(
            outgoing.method, outgoing.url, headers=headers, content=outgoing.body
        )
        return await self.client.send(request, stream=True)

    async def relay(self, send: Send, response: httpx.Response, request_id: str) -> None:
        try:
            headers = downstream_headers(list(response.headers.raw), request_id, _NOT_DOWNSTREAM)
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": headers}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except httpx.HTTPError:  # the upstream broke off mid-body; the status is sent
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


def rejected_token(response: httpx.Response) -> bool:
    """An upstream's 401 that says the token itself is bad (RFC 6750 §3.1): refresh, retry."""
    challenge = response.headers.get("www-authenticate", "")
    return response.status_code == 401 and "invalid_token" in challenge
