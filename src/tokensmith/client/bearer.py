"""The ``httpx.Auth`` of the kit: the access token on every request (RFC 6750 §2.1), and one
retry after a forced refresh when the API answers 401 with ``error="invalid_token"`` (RFC 6750
§3.1): the token was revoked or its key rotated. Never a second retry, so a misconfigured API
costs one extra token request, not a loop."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Generator

import httpx

from tokensmith.client.tokens import AccessToken, SingleFlight

__all__ = ["BearerAuth", "says_invalid_token"]

_INVALID_TOKEN = re.compile(r'(?:^|[\s,])error\s*=\s*"?invalid_token"?(?:[\s,]|$)', re.IGNORECASE)


def says_invalid_token(response: httpx.Response) -> bool:
    if response.status_code != 401:
        return False
    return any(
        _INVALID_TOKEN.search(value) is not None
        for value in response.headers.get_list("www-authenticate")
    )


def _authorized(request: httpx.Request, token: AccessToken) -> httpx.Request:
    request.headers["authorization"] = f"Bearer {token.value}"
    return request


class BearerAuth(httpx.Auth):
    """Attach the token of ``tokens``; a subclass says where tokens come from."""

    requires_request_body = True  # the retry sends the body again

    def __init__(self, tokens: SingleFlight) -> None:
        self.tokens = tokens

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        token = self.tokens.get()
        response = yield _authorized(request, token)
        if says_invalid_token(response):
            yield _authorized(request, self.tokens.get(stale=token))

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.tokens.get_async()
        response = yield _authorized(request, token)
        if says_invalid_token(response):
            yield _authorized(request, await self.tokens.get_async(stale=token))

    def access_token(self) -> str:
        """A valid access token now, for code that sends it itself."""
        return self.tokens.get().value

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
