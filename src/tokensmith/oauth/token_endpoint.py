"""The token endpoint (RFC 6749 §3.2, §5): authenticate the client, run its grant, answer.

Each step is one check, in this order: a grant_type that exists here (password and implicit do
not, ever: OAuth 2.1 §1.8), client authentication, the client's right to that grant, then the
grant's own checks. Errors are the RFC 6749 §5.2 codes raised as ``OAuthError``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tokensmith.core.scopes import parse_scope
from tokensmith.errors import InvalidRequest, UnauthorizedClient, UnsupportedGrantType
from tokensmith.oauth.access_tokens import TokenContext
from tokensmith.oauth.clients import Client
from tokensmith.oauth.code_exchange import exchange_code
from tokensmith.oauth.issuance import GrantDeps, respond
from tokensmith.oauth.params import Params
from tokensmith.oauth.refresh_rotation import rotate_refresh_token
from tokensmith.oauth.resources import resolve_audience
from tokensmith.oauth.scopes import narrow_scope

__all__ = ["SUPPORTED_GRANT_TYPES", "TokenEndpoint"]

Grant = Callable[[GrantDeps, Client, Params], Awaitable[dict[str, Any]]]


async def client_credentials(deps: GrantDeps, client: Client, params: Params) -> dict[str, Any]:
    """RFC 6749 §4.4: the client acts on its own behalf; the subject is the client."""
    ctx = TokenContext(
        client=client,
        subject=client.client_id,
        scope=narrow_scope(params.get("scope"), parse_scope(client.scope)),
        audience=resolve_audience(params.all("resource"), client, deps.policy.default_audience),
        lifetime=deps.policy.lifetime_for(client),
        grant_type="client_credentials",
    )
    return await respond(deps, ctx)


GRANTS: dict[str, Grant] = {
    "authorization_code": exchange_code,
    "client_credentials": client_credentials,
    "refresh_token": rotate_refresh_token,
}
SUPPORTED_GRANT_TYPES = tuple(GRANTS)


class TokenEndpoint:
    def __init__(self, deps: GrantDeps) -> None:
        self.deps = deps

    async def handle(
        self, params: Params, authenticate: Callable[[], Awaitable[Client]]
    ) -> dict[str, Any]:
        """``authenticate`` is the server's one client-authentication path (its lockouts and
        admission included); it runs once the grant type is known to exist."""
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required")
        grant = GRANTS.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType(f"grant_type {grant_type[:40]!r} is not supported")
        client = await authenticate()
        if grant_type not in client.grant_types:
            raise UnauthorizedClient(f"this client may not use {grant_type}")
        return await grant(self.deps, client, params)
