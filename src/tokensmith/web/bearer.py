"""Bearer tokens (RFC 6750) for this server's own resources: userinfo and the admin API.

The token comes from the Authorization header only, never from a query or a body, and errors are
RFC 6750 challenges with a JSON body.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.oauth.tokens import IssuedToken
from tokensmith.web.responses import json_response
from tokensmith.web.state import protocol_of, services_of

__all__ = ["BearerRefused", "actor_of", "bearer_error", "bearer_token", "require_bearer"]

_MAX_TOKEN = 8192


class BearerRefused(Exception):
    def __init__(
        self, status: int, error: str | None, description: str, scope: str | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.scope = scope

    def response(self) -> Response:
        return bearer_error(self.status, self.error, self.description, self.scope)


def bearer_error(
    status: int, error: str | None, description: str, scope: str | None = None
) -> Response:
    # RFC 6750 §3: the challenge names the error; with no credentials at all, only the realm.
    parts = ['Bearer realm="tokensmith"']
    if error is not None:
        parts += [f'error="{error}"', f'error_description="{description}"']
    if scope is not None:
        parts.append(f'scope="{scope}"')
    body = {"error": error or "invalid_request", "error_description": description}
    headers = {"www-authenticate": ", ".join(parts), "cache-control": "no-store"}
    return json_response(body, status, headers)


async def bearer_token(request: Request) -> IssuedToken:
    """The record of the request's valid access token, whatever its audience or scope."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise BearerRefused(401, None, "send the access token as Authorization: Bearer")
    inspector = protocol_of(request).inspector
    record = None if len(token) > _MAX_TOKEN else await inspector.active_token(token)
    if record is None:
        raise BearerRefused(401, "invalid_token", "the access token is invalid, expired or revoked")
    return record


async def require_bearer(request: Request, scope: str) -> IssuedToken:
    """A valid access token meant for this server (its audience) that carries ``scope``."""
    record = await bearer_token(request)
    settings = services_of(request).settings
    audiences = set(record.audience.split())
    if not audiences & {settings.issuer, settings.audience}:
        raise BearerRefused(401, "invalid_token", "the access token is not meant for this server")
    if scope not in record.scope.split():
        raise BearerRefused(403, "insufficient_scope", f"the {scope} scope is required", scope)
    return record


def actor_of(record: IssuedToken) -> str:
    """Who acts with a token: the client itself, or a user through it."""
    if record.subject == record.client_id:
        return f"client:{record.client_id}"
    return f"user:{record.subject} (client:{record.client_id})"
