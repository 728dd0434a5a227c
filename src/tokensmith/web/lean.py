"""The hot pipeline endpoints, reached without Starlette's middleware stack and router.

A ``POST`` to the token, introspection, revocation or API-key verification path goes straight to
its endpoint: the same function, the same ``Request`` and ``Response`` objects, but not the two
middleware layers, the route table scan and the wrappers around each handler that Starlette adds
(about a tenth of a token request's CPU). Everything else goes through Starlette unchanged. The
envelope wraps both, so the request id, security headers, size limits, the refusal of credentials
in a query, error mapping, the access log and metrics hold on every route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tokensmith.errors import OAuthError

__all__ = ["LeanApp"]

Endpoint = Callable[[Request], Awaitable[Response]]


class LeanApp(Starlette):
    """A Starlette app that serves the paths given to ``serve_lean`` itself."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._lean: dict[str, tuple[Route, Endpoint]] = {}

    def serve_lean(self, endpoints: Mapping[str, tuple[Route, Endpoint]]) -> None:
        """``POST path`` goes to ``endpoint``; ``route`` is the path's Starlette route (for
        ``scope["route"]``, which names the metrics' route template)."""
        self._lean = dict(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            found = self._lean.get(scope["path"])
        if found is None:
            await super().__call__(scope, receive, send)
            return
        route, endpoint = found
        # What Starlette and its router would have put in the scope.
        scope["app"] = self
        scope["route"] = route
        scope["endpoint"] = endpoint
        scope["path_params"] = {}
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except OAuthError as exc:
            response = await self._refused(request, exc)
        # Anything else propagates to the envelope, which logs it and answers 500 or 503.
        await response(scope, receive, send)

    async def _refused(self, request: Request, exc: OAuthError) -> Response:
        """The app's own OAuthError handler, as Starlette's exception middleware would call it."""
        handler = self.exception_handlers[OAuthError]
        return await handler(request, exc)  # type: ignore[no-any-return]
