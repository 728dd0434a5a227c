"""Every call the BFF makes to the authorization server, behind one narrow interface.

Discovery (OIDC Discovery 1.0 §4: the document's ``issuer`` must be the one we asked), the
authorization URL (code + PKCE S256, RFC 7636; ``state``, ``nonce``), the code exchange and the
refresh (RFC 6749 §4.1.3, §6) as a confidential client with ``client_secret_basic``, revocation
(RFC 7009) and the ID token check (``guard/id_tokens.py``). When ``tokensmith.client`` lands,
this module is the one place to switch to it; the rest of the BFF sees only ``IssuerClient``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx

from tokensmith.core.clock import Clock
from tokensmith.core.secrets import fingerprint
from tokensmith.guard.errors import GuardError
from tokensmith.guard.id_tokens import IdTokenValidator
from tokensmith.guard.jwks import JwksCache

__all__ = ["IssuerClient", "IssuerError", "IssuerUnavailable", "Metadata", "Tokens"]

log = logging.getLogger("tokensmith.bff")
_MAX_RESPONSE_BYTES = 64 * 1024
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class IssuerError(Exception):
    """The issuer refused (``error`` is its RFC 6749 code), or sent what we cannot accept."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class IssuerUnavailable(IssuerError):
    def __init__(self, description: str) -> None:
        super().__init__("temporarily_unavailable", description)


@dataclass(frozen=True, slots=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    revocation_endpoint: str | None
    userinfo_endpoint: str | None
    iss_parameter: bool  # RFC 9207: the issuer names itself in every authorization response


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
        parts = urlsplit(issuer)
        if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
            raise ValueError("the issuer must be https (plain http only on loopback)")
        self.issuer = issuer
        self.client_id = client_id
        self.resources = resources  # RFC 8707, asked for at login and at every refresh
        self._secret = client_secret
        self._clock = clock
        self._http = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._metadata: Metadata | None = None
        self._ids: IdTokenValidator | None = None
        self._discovering = asyncio.Lock()

    def __repr__(self) -> str:
        return f"IssuerClient({self.issuer!r}, client_id={self.client_id!r})"

    async def metadata(self) -> Metadata:
        if self._metadata is None:
            async with self._discovering:
                if self._metadata is None:
                    self._metadata = await self._discover()
                    jwks = JwksCache(self._metadata.jwks_uri)
                    self._ids = IdTokenValidator(
                        jwks, issuer=self.issuer, client_id=self.client_id, clock=self._clock
                    )
        return self._metadata

    async def authorization_url(
        self, *, redirect_uri: str, scope: str, state: str, nonce: str, code_challenge: str
    ) -> str:
        endpoint = (await self.metadata()).authorization_endpoint
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        query = urlencode([*params.items(), *(("resource", r) for r in self.resources)])
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

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
        try:
            response = await self._post(endpoint, [("token", token), ("token_type_hint", hint)])
        except IssuerError:
            log.warning("revocation failed", extra={"token": fingerprint(token)})
            return False
        return response.status_code == 200

    async def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        await self.metadata()
        assert self._ids is not None
        try:
            return await self._ids.validate(id_token, nonce)
        except GuardError as exc:
            raise IssuerError("invalid_id_token", exc.description) from None

    async def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """The person's claims (OIDC Core §5.3), or {} when the issuer offers none. Claims for
        another ``sub`` than the ID token's are refused (§5.3.2)."""
        endpoint = (await self.metadata()).userinfo_endpoint
        if endpoint is None:
            return {}
        request = self._http.build_request(
            "GET", endpoint, headers={"authorization": f"Bearer {access_token}"}
        )
        answer = await self._send(request)
        if answer.status_code != 200:
            return {}
        claims = _json_object(answer, "the userinfo response")
        if claims.get("sub") != subject:
            raise IssuerError("invalid_userinfo", "the userinfo response is for another subject")
        return claims

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _discover(self) -> Metadata:
        url = self.issuer + "/.well-known/openid-configuration"
        document = _json_object(await self._get(url), "the issuer's metadata")
        if document.get("issuer") != self.issuer:  # OIDC Discovery §4.3: exactly the one asked
            raise IssuerError("invalid_issuer", "the issuer's metadata names another issuer")
        endpoints = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str) or not value.startswith(("https://", "http://")):
                raise IssuerError("invalid_issuer", f"the issuer's metadata has no {name}")
            endpoints[name] = value
        revocation, userinfo = (
            document.get("revocation_endpoint"),
            document.get("userinfo_endpoint"),
        )
        return Metadata(
            issuer=self.issuer,
            revocation_endpoint=revocation if isinstance(revocation, str) else None,
            userinfo_endpoint=userinfo if isinstance(userinfo, str) else None,
            iss_parameter=document.get("authorization_response_iss_parameter_supported") is True,
            **endpoints,
        )

    async def _token(self, form: list[tuple[str, str]]) -> Tokens:
        response = await self._post((await self.metadata()).token_endpoint, form)
        body = _json_object(response, "the token response")
        if response.status_code != 200:
            error = body.get("error")
            raise IssuerError(
                error if isinstance(error, str) else "server_error",
                f"the issuer refused the token request ({error})",
            )
        access, expires_in = body.get("access_token"), body.get("expires_in", 300)
        refresh, id_token = body.get("refresh_token"), body.get("id_token")
        if not isinstance(access, str) or not access or type(expires_in) is not int:
            raise IssuerError("server_error", "the token response has no usable access token")
        return Tokens(
            access_token=access,
            expires_in=expires_in,
            refresh_token=refresh if isinstance(refresh, str) else None,
            id_token=id_token if isinstance(id_token, str) else None,
        )

    async def _get(self, url: str) -> _Answer:
        return await self._send(self._http.build_request("GET", url))

    async def _post(self, url: str, form: list[tuple[str, str]]) -> _Answer:
        # client_secret_basic: each part form-encoded before Basic (RFC 6749 §2.3.1)
        auth = httpx.BasicAuth(quote_plus(self.client_id), quote_plus(self._secret))
        headers = {"content-type": "application/x-www-form-urlencoded"}
        body = urlencode(form).encode("ascii")
        request = self._http.build_request("POST", url, content=body, headers=headers)
        request = next(auth.auth_flow(request))
        return await self._send(request)

    async def _send(self, request: httpx.Request) -> _Answer:
        try:
            response = await self._http.send(request, stream=True)
            try:
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > _MAX_RESPONSE_BYTES:
                        raise IssuerError("server_error", "the issuer's answer is too large")
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            problem = type(exc).__name__
            raise IssuerUnavailable(f"the issuer cannot be reached ({problem})") from None
        return _Answer(response.status_code, body)


@dataclass(frozen=True, slots=True)
class _Answer:
    status_code: int
    body: bytes = field(repr=False)


def _json_object(response: _Answer, what: str) -> dict[str, Any]:
    try:
        document = json.loads(response.body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        if response.status_code >= 500:
            raise IssuerUnavailable(f"{what} is a {response.status_code}")
        raise IssuerError("server_error", f"{what} is not a JSON object")
    return document
