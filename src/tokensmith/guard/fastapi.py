"""FastAPI dependency: ``principal: Principal = Depends(require_scopes("orders:read"))``.

Call ``install_guard(app, guard)`` once: it stores the guard and renders refusals as RFC 6750
JSON with the ``WWW-Authenticate`` challenge. Without it, FastAPI's own handler still sends the
right status and challenge, with a ``{"detail": ...}`` body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

from tokensmith.guard.asgi import authenticate_scope
from tokensmith.guard.errors import GuardError, ServiceUnavailable, render
from tokensmith.guard.guard import Guard
from tokensmith.guard.principal import Principal

__all__ = ["GuardRefusal", "install_guard", "require_scopes"]

_PASSED = ("www-authenticate", "retry-after", "dpop-nonce")


class GuardRefusal(HTTPException):
    def __init__(self, error: GuardError, realm: str) -> None:
        status, headers, _ = render(error, realm)
        challenge = {k: v for k, v in headers if k in _PASSED}
        super().__init__(status_code=status, detail=error.description, headers=challenge)
        self.error = error
        self.realm = realm


def install_guard(app: FastAPI, guard: Guard) -> None:
    app.state.tokensmith_guard = guard
    app.add_exception_handler(GuardRefusal, _render_refusal)  # type: ignore[arg-type]


def require_scopes(
    *scopes: str, guard: Guard | None = None
) -> Callable[[Request], Awaitable[Principal]]:
    needed = frozenset(scopes)

    async def dependency(request: Request) -> Principal:
        active: Guard | None = guard or getattr(request.app.state, "tokensmith_guard", None)
        if active is None:  # a wiring mistake must not open the route
            raise GuardRefusal(ServiceUnavailable("no guard is configured"), "tokensmith")
        done = request.scope.get("state", {}).get("principal")
        try:
            if isinstance(done, Principal):  # GuardMiddleware already checked the credential
                return active.require(done, needed)
            return await authenticate_scope(active, request.scope, needed)
        except GuardError as error:
            raise GuardRefusal(error, active.realm) from None

    return dependency


async def _render_refusal(request: Request, exc: GuardRefusal) -> Response:
    status, headers, body = render(exc.error, exc.realm)
    return Response(body, status_code=status, headers=dict(headers))
