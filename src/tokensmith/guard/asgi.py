"""Pure ASGI middleware: every HTTP request needs a valid credential with the given scopes.

The principal lands in ``scope["state"]["principal"]`` (Starlette's ``request.state.principal``;
``principal_of(scope)`` reads it back typed). No framework is imported here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import quote

from tokensmith.core.asgi import Receive, Scope, Send
from tokensmith.guard.credentials import Credential
from tokensmith.guard.dpop import ProofContext
from tokensmith.guard.errors import GuardError, InvalidRequest, ServiceUnavailable, render
from tokensmith.guard.guard import Guard
from tokensmith.guard.principal import Principal

__all__ = [
    "GuardMiddleware",
    "principal_of",
    "proof_context",
    "read_scope_credential",
    "send_refusal",
]

log = logging.getLogger("tokensmith.guard")

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class GuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        guard: Guard,
        *,
        scopes: Iterable[str] = (),
        exempt_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.guard = guard
        self.scopes = frozenset(scopes)
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        try:
            principal = await authenticate_scope(self.guard, scope, self.scopes)
        except GuardError as error:
            await send_refusal(send, error, self.guard.realm)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def authenticate_scope(guard: Guard, scope: Scope, scopes: Iterable[str]) -> Principal:
    """Read, check and authorise; anything unexpected fails closed as 503, never as a pass."""
    try:
        credential = read_scope_credential(guard, scope)
        client = scope.get("client")
        principal = await guard.authenticate(
            credential, client[0] if client else None, proof_context(scope)
        )
        return guard.require(principal, scopes)
    except GuardError:
        raise
    except Exception as exc:
        log.error("credential check crashed; refusing", extra={"error": type(exc).__name__})
        raise ServiceUnavailable("the credential cannot be checked right now") from None


def read_scope_credential(guard: Guard, scope: Scope) -> Credential:
    authorization: str | None = None
    api_key: str | None = None
    for name, value in scope["headers"]:
        if name == b"authorization" or name == b"x-api-key":
            text = value.decode("latin-1")
            if (authorization if name == b"authorization" else api_key) is not None:
                raise guard.marked(InvalidRequest("send one credential, not two"))
            if name == b"authorization":
                authorization = text
            else:
                api_key = text
    query = scope.get("query_string", b"").decode("latin-1")
    return guard.read(authorization, api_key, query)


def proof_context(scope: Scope) -> ProofContext:
    """The method, path, ``DPoP`` headers and (for ``trust_request_host`` only) origin."""
    proofs = tuple(v.decode("latin-1") for k, v in scope["headers"] if k == b"dpop")
    raw: bytes | None = scope.get("raw_path")
    path = raw.decode("latin-1").partition("?")[0] if raw else quote(scope["path"], safe=_PATH)
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
    origin = f"{scope.get('scheme', 'http')}://{host}" if host else None
    return ProofContext(scope["method"], path, proofs, origin)


_PATH = "/:@!$&'()*+,;=-._~"


async def send_refusal(send: Send, error: GuardError, realm: str) -> None:
    status, headers, body = render(error, realm)
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def principal_of(scope: Scope) -> Principal:
    """The principal the middleware validated for this request."""
    principal = scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise LookupError("no principal: is the route behind GuardMiddleware?")
    return principal
