"""The client_credentials grant (RFC 6749 §4.4): the client acts on its own behalf.

Only confidential clients may use it (§4.4: the client MUST authenticate); the subject of the
token is the client itself.
"""

from __future__ import annotations

from typing import Any

from tokensmith.oauth.access_tokens import TokenContext
from tokensmith.oauth.clients import Client
from tokensmith.oauth.issuance import TokenPolicy, TokenResponder
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.resources import resolve_audience
from tokensmith.oauth.scopes import narrow_scope

__all__ = ["ClientCredentialsGrant"]


class ClientCredentialsGrant:
    grant_type = "client_credentials"
    parameters = frozenset({"scope", "resource"})
    confidential_only = True

    def __init__(self, responder: TokenResponder, policy: TokenPolicy) -> None:
        self._responder = responder
        self._policy = policy

    async def handle(self, request: ProtocolRequest, client: Client) -> dict[str, Any]:
        params = request.params
        ctx = TokenContext(
            client=client,
            subject=client.client_id,
            scope=narrow_scope(params.get("scope"), client.scopes),
            audience=resolve_audience(
                params.all("resource"), client, self._policy.default_audience
            ),
            lifetime=self._policy.lifetime_for(client),
            grant_type=self.grant_type,
        )
        return await self._responder.respond(request, ctx)
