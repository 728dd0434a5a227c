"""Bearer tokens (RFC 6750) for this server's own resources: userinfo and the admin API.

The token comes from the Authorization header only, never from a query or a body, and errors are
RFC 6750 challenges with a JSON body.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.challenges import render_challenge
from tokensmith.errors import OAuthError
from tokensmith.oauth.tokens import IssuedToken
from tokensmith.web.responses import json_response
from tokensmith.web.state import protocol_of, services_of

__all__ = ["BearerRefused", "actor_of", "bearer_error", "bearer_token", "require_bearer"]

_MAX_TOKEN = 8192
_REALM = "tokensmith"


class BearerRefused(OAuthError):
    """An RFC 6750 refusal; ``code`` is missing_credential, invalid_token or insufficient_scope
    (its status comes from ``ERROR_CODES``), and ``scope`` the scope the request lacks."""

    def __init__(self, code: str, description: str, scope: str | None = None) -> None:
        super().__init__(description, code=code)
        self.scope = scope

    def challenge(self) -> str:
        # RFC 6750 §3: the challenge names the error; with no credentials at all, only the realm.
        if self.code == "missing_credential":
            return render_challenge("Bearer", realm=_REALM)
        return render_challenge(
            "Bearer",
            realm=_REALM,
            error=self.error,
            error_description=self.description,
            scope=self.scope,
        )

    def response(self) -> Response:
        body = {"error": self.error, "error_description": self.description}
        headers = {"www-authenticate": self.challenge(), "cache-control": "no-store"}
        return json_response(body, self.status, headers)


def bearer_error(code: str, description: str, scope: str | None = None) -> Response:
    return BearerRefused(code, description, scope).response()


async def bearer_token(request: Request) -> IssuedToken:
    """The record of the request's valid access token, whatever its audience or scope."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise BearerRefused("missing_credential", "send the access token as Authorization: Bearer")
    inspector = protocol_of(request).inspector
    record = None if len(token) > _MAX_TOKEN else await inspector.active_token(token)
    if record is None:
        raise BearerRefused("invalid_token", "the access token is invalid, expired or revoked")
    return record


async def require_bearer(request: Request, scope: str) -> IssuedToken:
    """A valid access token meant for this server (its audience) that carries ``scope``."""
    record = await bearer_token(request)
    settings = services_of(request).settings
    audiences = set(record.audience.split())
    if not audiences & {settings.issuer, settings.audience}:
        raise BearerRefused("invalid_token", "the access token is not meant for this server")
    if scope not in record.scope.split():
        raise BearerRefused("insufficient_scope", f"the {scope} scope is required", scope)
    return record


def actor_of(record: IssuedToken) -> str:
    """Who acts with a token: the client itself, or a user through it."""
    if record.subject == record.client_id:
        return f"client:{record.client_id}"
    return f"user:{record.subject} (client:{record.client_id})"
