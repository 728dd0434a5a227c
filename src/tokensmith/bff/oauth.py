"""Every call the BFF makes to the authorization server, behind one narrow interface, on the
client kit (``tokensmith.client``).

Discovery is the kit's (``client/discovery.py``: the ``issuer`` must be the one we asked, https
off loopback for the issuer and every endpoint); the BFF needs an authorization endpoint and a
JWKS besides. The authorization request (code + PKCE S256, RFC 7636; ``state``, ``nonce``) is the
kit's ``authorization_params``, as the CLI's login sends it, pushed first (RFC 9126,
``client/par.py``) whenever the issuer offers a pushed authorization request endpoint. The code
exchange and the refresh (RFC 6749 §4.1.3, §6) go through the kit's token endpoint call as a
confidential client with ``client_secret_basic``; revocation is RFC 7009, the ID token check the
kit's one validator (``client/id_tokens.py``). The kit's errors become the two the rest of the
BFF handles: ``IssuerUnavailable`` (try again later) and ``IssuerError``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from tokensmith.client.bounded import send_bounded_async
from tokensmith.client.credentials import client_secret_basic
from tokensmith.client.discovery import ServerMetadata, check_url, discover_async
from tokensmith.client.errors import (
    ClientError,
    DiscoveryError,
    DiscoveryUnavailable,
    IdTokenError,
    TokenEndpointUnavailable,
)
from tokensmith.client.id_tokens import IdTokenValidator
from tokensmith.client.login import authorization_params
from tokensmith.client.par import by_reference, par_endpoint, push_async
from tokensmith.client.tokens import Form, post_form_async, token_from_response
from tokensmith.core.clock import Clock
from tokensmith.core.secrets import fingerprint
from tokensmith.guard.jwks import JwksCache

__all__ = ["IssuerClient", "IssuerError", "IssuerUnavailable", "Tokens"]

log = logging.getLogger("tokensmith.bff")
# An issuer's userinfo answer is a few claims: more is refused unread (client/bounded.py).
_MAX_USERINFO_BYTES = 64 * 1024


class IssuerError(Exception):
    """The issuer refused (``error`` is its RFC 6749 code), or sent what we cannot accept."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    @classmethod
    def of(cls, exc: ClientError) -> IssuerError:
        """The kit's error, as the BFF handles it."""
        if isinstance(exc, DiscoveryUnavailable | TokenEndpointUnavailable):
            return IssuerUnavailable(exc.message)
        if isinstance(exc, DiscoveryError):
            return IssuerError("invalid_issuer", exc.message)
        return IssuerError(exc.error or "server_error", exc.message)


class IssuerUnavailable(IssuerError):
    def __init__(self, description: str) -> None:
        super().__init__("temporarily_unavailable", description)


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str | None = field(repr=False, default=None)
    id_token: str | None = field(repr=False, default=None)


class IssuerClient:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        clock: Clock,
        *,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
        resources: tuple[str, ...] = (),
    ) -> None:
        try:
            self.issuer = check_url(issuer, "the issuer")
        except DiscoveryError as exc:
            raise ValueError(exc.message) from None
        self.client_id = client_id
        self.resources = resources  # RFC 8707, asked for at login and at every refresh
        self._secret = client_secret
        self._clock = clock
        self._http = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._metadata: ServerMetadata | None = None
        self._ids: IdTokenValidator | None = None
        self._discovering = asyncio.Lock()

    def __repr__(self) -> str:
        return f"IssuerClient({self.issuer!r}, client_id={self.client_id!r})"

    async def metadata(self) -> ServerMetadata:
        if self._metadata is None:
            async with self._discovering:
                if self._metadata is None:
                    self._metadata = await self._discover()
        return self._metadata

    async def authorization_url(
        self, *, redirect_uri: str, scope: str, state: str, nonce: str, code_challenge: str
    ) -> str:
        """Pushed first whenever the issuer offers /par (RFC 9126): the BFF is confidential."""
        metadata = await self.metadata()
        endpoint = metadata.endpoint("authorization_endpoint")
        params = authorization_params(
            client_id=self.client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            nonce=nonce,
            code_challenge=code_challenge,
            resources=self.resources,
        )
        par = par_endpoint(metadata, whenever_offered=True)
        if par is None:
            return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"
        try:
            request_uri = await push_async(self._http, par, params, headers=self._basic())
        except ClientError as exc:
            raise IssuerError.of(exc) from None
        return by_reference(endpoint, self.client_id, request_uri)

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> Tokens:
        form = [("grant_type", "authorization_code"), ("code", code)]
        form += [("redirect_uri", redirect_uri), ("code_verifier", verifier)]
        return await self._token(form)  # the resources of the authorization request

    async def refresh(self, refresh_token: str) -> Tokens:
        form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)]
        return await self._token(form + [("resource", r) for r in self.resources])

    async def revoke(self, token: str, hint: str) -> bool:
        """Whether the issuer took the revocation; a failure is logged, never raised (the
        session ends here either way)."""
        endpoint = (await self.metadata()).revocation_endpoint
        if endpoint is None:
            return False
        form = {"token": token, "token_type_hint": hint}
        request = self._http.build_request("POST", endpoint, data=form, headers=self._basic())
        try:  # RFC 7009 §2.2: the body says nothing; none of it is read
            response, _ = await send_bounded_async(self._http, request, 0)
        except httpx.HTTPError:
            log.warning("revocation failed", extra={"token": fingerprint(token)})
            return False
        return response.status_code == 200

    async def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        await self.metadata()
        assert self._ids is not None
        try:
            return await self._ids.validate(id_token, nonce)
        except IdTokenError as exc:
            raise IssuerError("invalid_id_token", exc.message) from None

    async def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """The person's claims (OIDC Core §5.3), or {} when the issuer offers none. Claims for
        another ``sub`` than the ID token's are refused (§5.3.2)."""
        endpoint = (await self.metadata()).userinfo_endpoint
        if endpoint is None:
            return {}
        request = self._http.build_request(
            "GET", endpoint, headers={"authorization": f"Bearer {access_token}"}
        )
        try:
            answer, content = await send_bounded_async(self._http, request, _MAX_USERINFO_BYTES)
        except httpx.HTTPError as exc:
            problem = type(exc).__name__
            raise IssuerUnavailable(f"the userinfo endpoint is unreachable ({problem})") from None
        if answer.status_code != 200:
            return {}
        try:
            claims = None if content is None else json.loads(content)
        except ValueError:
            claims = None
        if not isinstance(claims, dict):
            raise IssuerError("server_error", "the userinfo response is not a JSON object")
        if claims.get("sub") != subject:
            raise IssuerError("invalid_userinfo", "the userinfo response is for another subject")
        return claims

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _discover(self) -> ServerMetadata:
        try:
            metadata = await discover_async(self.issuer, http=self._http)
        except ClientError as exc:
            raise IssuerError.of(exc) from None
        if metadata.authorization_endpoint is None or metadata.jwks_uri is None:
            raise IssuerError("invalid_issuer", "the issuer's metadata lacks an endpoint we need")
        self._ids = IdTokenValidator(
            JwksCache(metadata.jwks_uri),
            issuer=metadata.issuer,
            client_id=self.client_id,
            algorithms=metadata.id_token_algs,
            clock=self._clock,
        )
        return metadata

    async def _token(self, form: Form) -> Tokens:
        endpoint = (await self.metadata()).token_endpoint
        try:
            body = await post_form_async(self._http, endpoint, form, headers=self._basic())
            token = token_from_response(body, self._clock.now())
        except ClientError as exc:
            raise IssuerError.of(exc) from None
        if type(body.get("expires_in", 0)) is not int:
            raise IssuerError("server_error", "the token response has an unusable expires_in")
        refresh, id_token = body.get("refresh_token"), body.get("id_token")
        return Tokens(
            access_token=token.value,
            expires_in=token.expires_at - token.issued_at,
            refresh_token=refresh if isinstance(refresh, str) else None,
            id_token=id_token if isinstance(id_token, str) else None,
        )

    def _basic(self) -> dict[str, str]:
        return client_secret_basic(self.client_id, self._secret)
