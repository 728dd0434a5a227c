"""The token endpoint (RFC 6749 §3.2, §5): a grant_type that exists here, then its handler.

The client pipeline (``oauth/pipeline.py``) runs around it: ``precheck`` refuses an absent or
unknown grant_type before anyone is authenticated (password and implicit do not exist, ever:
OAuth 2.1 §1.8), then authentication, lockouts and admission, then ``handle``: the client's right
to that grant, then the grant's own checks. Errors are the RFC 6749 §5.2 codes raised as
``OAuthError``.
"""

from __future__ import annotations

from tokensmith.errors import InvalidRequest, UnauthorizedClient, UnsupportedGrantType
from tokensmith.oauth.clients import Client
from tokensmith.oauth.dpop import TokenEndpointDpop
from tokensmith.oauth.grant_types import GrantHandler, GrantRegistry
from tokensmith.oauth.pipeline import NO_STORE, Answer
from tokensmith.oauth.request import ProtocolRequest

__all__ = ["TokenEndpoint"]


class TokenEndpoint:
    def __init__(self, grants: GrantRegistry, dpop: TokenEndpointDpop | None = None) -> None:
        self.grants = grants
        self.dpop = dpop  # RFC 9449: the proof is checked in full before the grant runs

    def precheck(self, request: ProtocolRequest) -> None:
        self._grant(request)

    async def handle(self, request: ProtocolRequest, client: Client | None) -> Answer:
        assert client is not None  # the token endpoint always authenticates the client
        grant = self._grant(request)
        if grant.grant_type not in client.grant_types:
            raise UnauthorizedClient(f"this client may not use {grant.grant_type}")
        if grant.confidential_only and client.is_public:
            raise UnauthorizedClient(f"a public client may not use {grant.grant_type}")
        if self.dpop is None:
            return Answer(body=await grant.handle(request, client))
        request = await self.dpop.bind(request, client)
        body = await grant.handle(request, client)
        if request.header("dpop") is None:
            return Answer(body=body)
        return Answer(body=body, headers={**NO_STORE, **self.dpop.checker.response_headers()})

    def _grant(self, request: ProtocolRequest) -> GrantHandler:
        grant_type = request.params.get("grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required")
        grant = self.grants.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType(f"grant_type {grant_type[:40]!r} is not supported")
        return grant
