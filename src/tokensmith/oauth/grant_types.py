"""Grant handlers (RFC 6749 §4, §6) and the registry the token endpoint dispatches through.

A grant is one module with one handler class; ``runtime/features.py`` declares which feature
registers it, and ``runtime/protocol.py`` builds the registry of the enabled ones. The registry
is the only list of grant types: the token endpoint, client registration and discovery all read
it, so a grant that is not registered does not exist anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from tokensmith.oauth.clients import Client
from tokensmith.oauth.request import ProtocolRequest

__all__ = ["CLIENT_AUTH_PARAMETERS", "GrantHandler", "GrantRegistry"]

# Owned by client authentication (RFC 6749 §2.3, RFC 7523 §2.2): no grant may claim them.
CLIENT_AUTH_PARAMETERS = frozenset(
    {"client_id", "client_secret", "client_assertion", "client_assertion_type"}
)


class GrantHandler(Protocol):
    grant_type: str  # the grant_type value, or an absolute URI for an extension grant
    parameters: frozenset[str]  # the token request parameters it reads, besides grant_type
    confidential_only: bool  # refused to public clients, at registration and at /token

    async def handle(self, request: ProtocolRequest, client: Client) -> dict[str, Any]:
        """The token response body (RFC 6749 §5.1), or an OAuthError."""
        ...


class GrantRegistry:
    def __init__(self, handlers: Iterable[GrantHandler] = ()) -> None:
        self._handlers: dict[str, GrantHandler] = {}
        for handler in handlers:
            self.register(handler)

    def register(self, handler: GrantHandler) -> None:
        if handler.grant_type in self._handlers:
            raise ValueError(f"grant type {handler.grant_type!r} is registered twice")
        if handler.grant_type in ("password", "implicit"):  # OAuth 2.1 §1.8: never
            raise ValueError(f"the {handler.grant_type} grant is not allowed")
        owned = handler.parameters & (CLIENT_AUTH_PARAMETERS | {"grant_type"})
        if owned:
            raise ValueError(f"{handler.grant_type}: {sorted(owned)[0]} is not a grant's to read")
        self._handlers[handler.grant_type] = handler

    def get(self, grant_type: str) -> GrantHandler | None:
        return self._handlers.get(grant_type)

    @property
    def grant_types(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    def confidential_only(self) -> frozenset[str]:
        return frozenset(name for name, h in self._handlers.items() if h.confidential_only)
