"""The ``httpx.Auth`` of the kit: the access token on every request (RFC 6750 §2.1), and one
retry after a forced refresh when the API answers 401 with ``error="invalid_token"`` (RFC 6750
§3.1): the token was revoked or its key rotated. Never a second retry, so a misconfigured API
costs one extra token request, not a loop.

A DPoP-bound token (RFC 9449 §7.1) goes as ``Authorization: DPoP`` with a fresh proof carrying
its ``ath``; a 401 ``use_dpop_nonce`` with a new ``DPoP-Nonce`` is retried once with it (§9)."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Generator

import httpx

from tokensmith.client.dpop import DpopKey
from tokensmith.client.errors import ClientError
from tokensmith.client.tokens import AccessToken, SingleFlight

__all__ = ["BearerAuth", "says_invalid_token", "says_use_dpop_nonce"]

_INVALID_TOKEN = re.compile(r'(?:^|[\s,])error\s*=\s*"?invalid_token"?(?:[\s,]|$)', re.IGNORECASE)
_USE_NONCE = re.compile(r'(?:^|[\s,])error\s*=\s*"?use_dpop_nonce"?(?:[\s,]|$)', re.IGNORECASE)


def _challenged(response: httpx.Response, pattern: re.Pattern[str]) -> bool:
    if response.status_code != 401:
        return False
    values = response.headers.get_list("www-authenticate")
    return any(pattern.search(value) is not None for value in values)


def says_invalid_token(response: httpx.Response) -> bool:
    return _challenged(response, _INVALID_TOKEN)


def says_use_dpop_nonce(response: httpx.Response) -> bool:
    return _challenged(response, _USE_NONCE)


class BearerAuth(httpx.Auth):
    """Attach the token of ``tokens``; a subclass says where tokens come from. ``dpop`` is the
    key the tokens are bound to, if they are."""

    requires_request_body = True  # the retry sends the body again

    def __init__(self, tokens: SingleFlight, dpop: DpopKey | None = None) -> None:
        self.tokens = tokens
        self.dpop = dpop

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        token = self.tokens.get()
        response = yield self._authorized(request, token)
        if self._nonce_retry(request, token, response):
            response = yield self._authorized(request, token)
        if says_invalid_token(response):
            yield self._authorized(request, self.tokens.get(stale=token))

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.tokens.get_async()
        response = yield self._authorized(request, token)
        if self._nonce_retry(request, token, response):
            response = yield self._authorized(request, token)
        if says_invalid_token(response):
            yield self._authorized(request, await self.tokens.get_async(stale=token))

    def _authorized(self, request: httpx.Request, token: AccessToken) -> httpx.Request:
        if token.token_type != "DPoP":
            request.headers["authorization"] = f"Bearer {token.value}"
            return request
        if self.dpop is None:
            raise ClientError("a DPoP-bound token needs its key, which this auth does not hold")
        request.headers["authorization"] = f"DPoP {token.value}"
        request.headers["dpop"] = self.dpop.proof(
            request.method, request.url, access_token=token.value
        )
        return request

    def _nonce_retry(
        self, request: httpx.Request, token: AccessToken, response: httpx.Response
    ) -> bool:
        """Whether to send once more, with the nonce this answer brought (RFC 9449 §9)."""
        if self.dpop is None or token.token_type != "DPoP":
            return False
        fresh = self.dpop.remember_nonce(request.url, response)
        return fresh and says_use_dpop_nonce(response)

    def access_token(self) -> str:
        """A valid access token now, for code that sends it itself."""
        return self.tokens.get().value

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
