"""Thin HTTP adapters: a Starlette request in, a ``ProtocolRequest`` to protocol code, its
``Answer`` back out as a response. Nothing here decides anything about the protocol."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import Response

from tokensmith.errors import InvalidDpopProof, InvalidRequest, OAuthError
from tokensmith.oauth.params import Params
from tokensmith.oauth.pipeline import Answer, ClientEndpoint
from tokensmith.oauth.request import PROTOCOL_HEADERS, ProtocolRequest
from tokensmith.web.cors import allow_client_origin
from tokensmith.web.forms import has_body, read_form
from tokensmith.web.responses import json_response
from tokensmith.web.state import services_of
from tokensmith.web.throttle import peer

__all__ = ["answer_response", "client_endpoint", "is_pipeline_endpoint", "protocol_request"]

_HEADERS = frozenset(name.encode() for name in PROTOCOL_HEADERS)
# A credential sent twice is refused: a proxy in front may have judged the other one (the guard
# refuses two as well). Any other protocol header is read like Starlette's: the first one wins.
_CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-api-key", b"dpop"})

Endpoint = Callable[[Request], Awaitable[Response]]
_PIPELINE_ENDPOINTS: set[Endpoint] = set()  # what client_endpoint made: web/lean.py serves them


def protocol_request(
    request: Request, params: Params, headers: dict[str, str] | None = None
) -> ProtocolRequest:
    """The one typed value protocol code sees of this request (``headers``: already picked)."""
    scope = request.scope
    if headers is None:
        headers, _ = _protocol_headers(scope)
    return ProtocolRequest(
        method=request.method,
        url=_request_url(scope),
        params=params,
        source=peer(request),
        headers=headers,
        client_cert=_client_certificate(scope),
        has_body=has_body(request),
    )


def _request_url(scope: MutableMapping[str, Any]) -> str:
    """The URL as the client addressed us, without its query: request.url decodes the query as
    UTF-8, which a server that passes raw bytes through would turn into a 500."""
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    server = scope.get("server")  # a pair, which ASGI allows as a list (not hashable)
    where = (server[0], server[1]) if server is not None else None
    if host is not None and len(host) > _HOST_CACHED:
        return _url.__wrapped__(scope.get("scheme", "http"), host, where, scope["path"])
    return _url(scope.get("scheme", "http"), host, where, scope["path"])


_HOST_CACHED = 255  # a DNS name's longest; a longer Host is built each time, not kept


@functools.lru_cache(maxsize=512)
def _url(scheme: str, host: bytes | None, server: Any, path: str) -> str:
    # What Starlette's URL reads of a scope; a token endpoint sees the same few every time.
    headers = [(b"host", host)] if host is not None else []
    scope = {"scheme": scheme, "server": server, "path": path, "headers": headers}
    return str(URL(scope=scope))


def _protocol_headers(scope: MutableMapping[str, Any]) -> tuple[dict[str, str], str | None]:
    """The protocol headers (the first of each name), and a credential header sent twice."""
    headers: dict[str, str] = {}
    repeated: str | None = None
    for raw_name, raw_value in scope["headers"]:
        if raw_name not in _HEADERS:
            continue
        name = raw_name.decode("latin-1")
        if name not in headers:
            headers[name] = raw_value.decode("latin-1")
        elif raw_name in _CREDENTIAL_HEADERS and repeated is None:
            repeated = name
    return headers, repeated


def _client_certificate(scope: MutableMapping[str, Any]) -> bytes | None:
    """The client's certificate (DER) from the ASGI TLS extension, when the server gives one."""
    extensions = scope.get("extensions")
    tls = extensions.get("tls") if isinstance(extensions, dict) else None
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    if not isinstance(chain, list | tuple) or not chain or not isinstance(chain[0], str):
        return None
    try:
        return ssl.PEM_cert_to_DER_cert(chain[0])
    except ValueError:
        return None


def answer_response(answer: Answer) -> Response:
    headers = dict(answer.headers)
    if answer.body is None:
        return Response(status_code=answer.status, headers=headers)
    return json_response(answer.body, answer.status, headers)


def client_endpoint(
    endpoint: Callable[[Request], ClientEndpoint], *, form: bool = True, cors: bool = False
) -> Endpoint:
    """A route for a pipeline endpoint. ``form``: the body is always a form (else only when
    one is sent); ``cors``: browser apps may read the answer from their registered origins."""

    async def route(request: Request) -> Response:
        pipeline = endpoint(request)
        limit = services_of(request).settings.max_body_bytes
        headers, repeated = _protocol_headers(request.scope)
        try:
            if repeated == "dpop":  # RFC 9449 §4.3 step 1: exactly one proof
                raise InvalidDpopProof("send exactly one DPoP header")
            if repeated is not None:
                raise InvalidRequest(f"the {repeated} header may be sent only once")
            read = form or has_body(request)
            params = await read_form(request, limit) if read else Params()
        except OAuthError as error:
            # Refused before it was read: audited, and never readable cross-origin.
            unread = protocol_request(request, Params(), headers)
            return answer_response(pipeline.refuse(unread, error))
        call = protocol_request(request, params, headers)
        response = answer_response(await pipeline(call))
        return await _with_cors(request, call, response) if cors else response

    _PIPELINE_ENDPOINTS.add(route)
    return route


def is_pipeline_endpoint(endpoint: object) -> bool:
    """Made by ``client_endpoint``: it needs nothing of Starlette's but a ``Request``."""
    return endpoint in _PIPELINE_ENDPOINTS


async def _with_cors(request: Request, call: ProtocolRequest, response: Response) -> Response:
    """Browser apps may read the answer only from an origin their client registered."""
    if call.header("origin") is None or call.credentials is None:
        return response
    return await allow_client_origin(request, call.credentials.client_id, response)
