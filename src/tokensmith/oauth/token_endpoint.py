"""The token endpoint (RFC 6749 §3.2, §5): authenticate the client, run its grant, answer.

Each step is one check, in this order: a grant_type that exists here (password and implicit do
not, ever: OAuth 2.1 §1.8), client authentication, the client's right to that grant, then the
grant's own checks. Errors are the RFC 6749 §5.2 codes raised as ``OAuthError``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tokensmith.core.clock import Clock
from tokensmith.core.scopes import parse_scope
from tokensmith.errors import InvalidRequest, InvalidScope, UnauthorizedClient, UnsupportedGrantType
from tokensmith.oauth.access_tokens import AccessToken, AccessTokenIssuer, TokenContext
from tokensmith.oauth.client_auth import authenticate_client, read_credentials
from tokensmith.oauth.clients import Client, ClientStore
from tokensmith.oauth.params import Params
from tokensmith.oauth.resources import resolve_audience
from tokensmith.oauth.tokens import TokenStore

__all__ = ["SUPPORTED_GRANT_TYPES", "TokenEndpoint", "TokenPolicy"]

SUPPORTED_GRANT_TYPES = ("client_credentials",)


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    default_audience: str
    access_token_ttl: int
    max_lifetime: int

    def lifetime_for(self, client: Client) -> int:
        return min(client.access_token_ttl or self.access_token_ttl, self.max_lifetime)


class TokenEndpoint:
    def __init__(
        self,
        *,
        clients: ClientStore,
        tokens: TokenStore,
        issuer: AccessTokenIssuer,
        policy: TokenPolicy,
        pepper: bytes,
        clock: Clock,
    ) -> None:
        self._clients = clients
        self._tokens = tokens
        self._issuer = issuer
        self._policy = policy
        self._pepper = pepper
        self._clock = clock
        self._grants: dict[str, Callable[[Client, Params], Awaitable[dict[str, Any]]]] = {
            "client_credentials": self._client_credentials,
        }

    async def handle(self, authorization: str | None, params: Params) -> dict[str, Any]:
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required")
        grant = self._grants.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType(f"grant_type {grant_type[:40]!r} is not supported")
        credentials = read_credentials(authorization, params)
        client = await authenticate_client(
            credentials, self._clients, self._pepper, self._clock.now()
        )
        if grant_type not in client.grant_types:
            raise UnauthorizedClient(f"this client may not use {grant_type}")
        return await grant(client, params)

    async def _client_credentials(self, client: Client, params: Params) -> dict[str, Any]:
        """RFC 6749 §4.4: the client acts on its own behalf; the subject is the client."""
        scope = _granted_scope(params.get("scope"), parse_scope(client.scope))
        audience = resolve_audience(params.all("resource"), client, self._policy.default_audience)
        ctx = TokenContext(
            client=client,
            subject=client.client_id,
            scope=scope,
            audience=audience,
            lifetime=self._policy.lifetime_for(client),
        )
        return await self._respond(self._issuer.issue(ctx))

    async def _respond(self, token: AccessToken) -> dict[str, Any]:
        if token.record is not None:
            await self._tokens.add(token.record)  # stored before it is handed out
        body: dict[str, Any] = {
            "access_token": token.value,
            "token_type": "Bearer",
            "expires_in": token.expires_in,
        }
        if token.scope:
            body["scope"] = token.scope
        return body


def _granted_scope(requested: str | None, allowed: frozenset[str]) -> frozenset[str]:
    """RFC 6749 §3.3: the requested scope, which must lie within what the client may have."""
    if requested is None:
        return allowed
    try:
        wanted = parse_scope(requested)
    except ValueError as exc:
        raise InvalidScope(str(exc)) from None
    extra = wanted - allowed
    if extra:
        raise InvalidScope(f"scope {sorted(extra)[0]!r} is not allowed for this client")
    return wanted
