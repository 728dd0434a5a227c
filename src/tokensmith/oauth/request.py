"""One request as protocol code sees it: no framework object below ``web/``.

``web/`` builds a ``ProtocolRequest`` once per request: the form parameters, the few headers
protocol code may read (``Authorization``, ``DPoP``, ``Origin``, ...), the method, the full URL
the client used, the source address as the trusted-proxy rule decided it, and the client
certificate when TLS gave one. The client credentials are parsed here, once: the pipeline, the
lockout names, the audit trail and CORS all read the same parse.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tokensmith.errors import OAuthError
from tokensmith.oauth.client_auth import ClientCredentials, read_credentials
from tokensmith.oauth.params import Params

__all__ = ["PROTOCOL_HEADERS", "ProtocolRequest"]

# Lower-case names of the headers protocol code may read; every other header stays in web/.
PROTOCOL_HEADERS = frozenset(
    {"authorization", "dpop", "origin", "user-agent", "x-api-key", "content-type"}
)
_MAX_CLAIMED = 128
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ProtocolRequest:
    method: str
    url: str  # scheme, host and path as the client addressed us (no query: never a secret)
    params: Params
    source: str  # the caller's address, as the trusted-proxy rule decided it
    headers: Mapping[str, str] = field(default_factory=lambda: _NO_HEADERS)
    client_cert: bytes | None = None  # DER, from the TLS layer, when the client sent one
    has_body: bool = False  # the request said it carries one (a length above 0, or chunked)
    credentials: ClientCredentials | None = field(init=False, default=None)
    credentials_error: OAuthError | None = field(init=False, default=None)
    claimed_client: str | None = field(init=False, default=None)
    # The RFC 7638 thumbprint of the key of this request's DPoP proof, once ``oauth/dpop.py``
    # has verified it (``with_dpop_key``); None without a proof. Never set by web/.
    dpop_jkt: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        credentials, error = None, None
        try:
            credentials = read_credentials(self.authorization, self.params)
        except OAuthError as refused:
            error = refused
        object.__setattr__(self, "credentials", credentials)
        object.__setattr__(self, "credentials_error", error)
        object.__setattr__(self, "claimed_client", self._claimed(credentials))

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def presents_client(self) -> bool:
        """Whether the request says a client is calling: an Authorization header (even an
        empty one) or a body, which may carry client credentials."""
        return self.authorization is not None or self.has_body

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def with_dpop_key(self, jkt: str) -> ProtocolRequest:
        """This request, its DPoP proof verified: the grant and the response hooks bind to
        ``jkt``. A copy, so the credentials are not parsed again."""
        bound = copy.copy(self)
        object.__setattr__(bound, "dpop_jkt", jkt)
        return bound

    def _claimed(self, credentials: ClientCredentials | None) -> str | None:
        """The client id the request claims before anything proves it (the Basic user, the
        body's client_id or an assertion's sub); capped, for lockout names and the audit."""
        claimed = credentials.client_id if credentials is not None else None
        if claimed is None:
            claimed = self.params.get("client_id")
        if claimed is None and self.authorization is not None:
            # Two methods at once, or a malformed body: the header may still name someone.
            try:
                claimed = read_credentials(self.authorization, Params()).client_id
            except OAuthError:
                claimed = None
        return claimed[:_MAX_CLAIMED] if claimed else None
