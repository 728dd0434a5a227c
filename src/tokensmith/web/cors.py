"""CORS for the endpoints a browser app calls itself: token, revocation and userinfo (the routes
``runtime/features.py`` marks ``cors_preflight``).

A preflight (Fetch standard, "CORS-preflight request") carries no client id and no credential,
so it is answered for an origin that *any* client registered; the answer to the real request is
then allowed only for an origin that *its* client registered (``web/endpoints.py: _with_cors``,
``allow_client_origin`` here). Introspection is server-to-server and has no preflight; the
authorization endpoint, login and consent are navigations, never fetched across origins, and a
preflight there gets no CORS headers (their routes have no OPTIONS at all).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.oauth.clients import ClientStore
from tokensmith.web.state import services_of

__all__ = ["RegisteredOrigins", "allow_client_origin", "preflight"]

# DPoP (RFC 9449): a browser app sends its proof, and reads the server's nonce from the answer.
_ALLOWED_HEADERS = frozenset({"authorization", "content-type", "dpop"})
_EXPOSED_HEADERS = "DPoP-Nonce"
_MAX_AGE = "600"  # browsers cap it anyway (Chromium at 2 h); 10 min bounds a removed origin
_CACHE_SECONDS = 5.0


class RegisteredOrigins:
    """Every client's registered origins, read at most every few seconds: a preflight flood
    costs no database work beyond one listing per period."""

    def __init__(
        self,
        clients: ClientStore,
        ttl: float = _CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clients, self.ttl, self.monotonic = clients, ttl, monotonic
        self._origins: frozenset[str] = frozenset()
        self._until = 0.0

    async def contains(self, origin: str) -> bool:
        now = self.monotonic()
        if now >= self._until:
            listed = await self.clients.list()
            self._origins = frozenset(o for client in listed for o in client.cors_origins)
            self._until = now + self.ttl
        return origin in self._origins


def _origins(request: Request) -> RegisteredOrigins:
    state = request.app.state
    cache = getattr(state, "registered_origins", None)
    if cache is None:
        cache = state.registered_origins = RegisteredOrigins(services_of(request).clients)
    return cast(RegisteredOrigins, cache)


def preflight(methods: Sequence[str]) -> Callable[[Request], Awaitable[Response]]:
    """The OPTIONS route of an endpoint that answers ``methods`` (from the capability registry):
    the CORS headers for a registered origin asking for one of them; anything else gets a bare
    204, which a browser treats as a refusal."""
    allowed = tuple(methods)
    allow = ", ".join(("OPTIONS", *allowed))

    async def answer(request: Request) -> Response:
        headers = {"vary": "Origin", "allow": allow}
        origin = request.headers.get("origin")
        wanted = request.headers.get("access-control-request-method", "")
        asked = {
            h.strip().lower()
            for h in request.headers.get("access-control-request-headers", "").split(",")
        }
        asked.discard("")
        if (
            origin is not None
            and wanted in allowed
            and asked <= _ALLOWED_HEADERS
            and await _origins(request).contains(origin)
        ):
            headers |= {
                "access-control-allow-origin": origin,
                "access-control-allow-methods": ", ".join(allowed),
                "access-control-allow-headers": ", ".join(sorted(_ALLOWED_HEADERS)),
                "access-control-max-age": _MAX_AGE,
            }
        return Response(status_code=204, headers=headers)

    return answer


async def allow_client_origin(request: Request, client_id: str, response: Response) -> Response:
    """The real request's answer: readable only from an origin the client registered."""
    origin = request.headers.get("origin")
    if origin is None:
        return response
    client = await services_of(request).clients.get(client_id)
    if client is not None and origin in client.cors_origins:
        response.headers["access-control-allow-origin"] = origin
        response.headers["access-control-expose-headers"] = _EXPOSED_HEADERS
        response.headers["vary"] = "Origin"
    return response
