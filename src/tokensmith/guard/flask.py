"""Flask (WSGI) decorator: ``@flask_guard.require_scopes("orders:read")``.

The view gets the validated identity as its ``principal`` keyword argument (and in
``flask.g.principal``). Flask is imported only here, so the rest of the guard never needs it
(``pip install tokensmith[guard-flask]``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import flask

from tokensmith.guard.dpop import ProofContext
from tokensmith.guard.errors import GuardError, InvalidRequest, ServiceUnavailable, render
from tokensmith.guard.guard import Guard
from tokensmith.guard.principal import Principal

__all__ = ["FlaskGuard"]

log = logging.getLogger("tokensmith.guard")
F = TypeVar("F", bound=Callable[..., Any])


class FlaskGuard:
    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def require_scopes(self, *scopes: str) -> Callable[[F], F]:
        needed = frozenset(scopes)

        def decorate(view: F) -> F:
            @functools.wraps(view)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                try:
                    principal = self._authenticate(needed)
                except GuardError as error:
                    status, headers, body = render(error, self.guard.realm)
                    return flask.Response(body, status=status, headers=headers)
                flask.g.principal = principal
                return view(*args, principal=principal, **kwargs)

            return guarded  # type: ignore[return-value]

        return decorate

    def _authenticate(self, needed: frozenset[str]) -> Principal:
        request = flask.request
        try:
            authorization = request.headers.getlist("Authorization")
            api_key = request.headers.getlist("X-API-Key")
            if len(authorization) > 1 or len(api_key) > 1:
                raise self.guard.marked(InvalidRequest("send one credential, not two"))
            credential = self.guard.read(
                authorization[0] if authorization else None,
                api_key[0] if api_key else None,
                request.query_string.decode("latin-1"),
            )
            principal = self.guard.authenticate_blocking(
                credential, request.remote_addr, _proof_context(request)
            )
            return self.guard.require(principal, needed)
        except GuardError:
            raise
        except Exception as exc:
            log.error("credential check crashed; refusing", extra={"error": type(exc).__name__})
            raise ServiceUnavailable("the credential cannot be checked right now") from None


def _proof_context(request: flask.Request) -> ProofContext:
    """What a DPoP check needs; the path re-encoded as the client sent it (WSGI decodes it)."""
    path = quote(request.script_root + request.path, safe="/:@!$&'()*+,;=-._~")
    origin = f"{request.scheme}://{request.host}" if request.host else None
    return ProofContext(request.method, path, tuple(request.headers.getlist("DPoP")), origin)
