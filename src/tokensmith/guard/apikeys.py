"""API keys, checked by the issuer's verify endpoint; the app never sees a key database.

``POST {issuer}/api-keys/verify`` with the key in ``X-API-Key`` (never a URL). A caller that
authenticates as an OAuth client may pass the original caller's address as ``client_ip`` for the
key's allowed-address rule. Answers are cached for at most ``cache_seconds`` (default 1 s: a
revoked key stops working here within that bound, SECURITY.md case 49).
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from tokensmith.apikeys.format import parse_api_key
from tokensmith.guard.audience import audience_of
from tokensmith.guard.errors import ForbiddenSource, InvalidToken, RateLimited
from tokensmith.guard.principal import Principal
from tokensmith.guard.remote import RemoteCheck, Verdict

__all__ = ["ApiKeyChecker", "RemoteApiKeyVerifier", "key_principal"]


class ApiKeyChecker(Protocol):
    async def check(self, key: str, source_ip: str | None) -> Principal: ...

    def check_blocking(self, key: str, source_ip: str | None) -> Principal: ...


class RemoteApiKeyVerifier(RemoteCheck):
    what = "API key"

    def __init__(
        self,
        verify_url: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.verify_url = verify_url
        both = client_id is not None and client_secret is not None
        self._auth = httpx.BasicAuth(client_id, client_secret) if both else None  # type: ignore[arg-type]

    async def check(self, key: str, source_ip: str | None) -> Principal:
        _refuse_malformed(key)
        return await self.check_async(key, source_ip if self._auth else None)

    def check_blocking(self, key: str, source_ip: str | None) -> Principal:
        _refuse_malformed(key)
        return self.check_sync(key, source_ip if self._auth else None)

    def build(self, credential: str, context: str | None) -> httpx.Request:
        # Only an authenticated caller may speak for another address (the server ignores it else).
        data = {"client_ip": context} if context is not None else {}
        request = httpx.Request(
            "POST",
            self.verify_url,
            data=data,
            headers={"x-api-key": credential, "accept": "application/json"},
        )
        return next(self._auth.auth_flow(request)) if self._auth is not None else request

    def judge(self, response: httpx.Response) -> Verdict:
        status = response.status_code
        if (status, _error_code(response)) in _OUR_FAULT:
            # Our own client was refused, not the key: a configuration error, never the caller's
            # (fails closed as the verifier being unavailable, and is not cached as a verdict).
            raise ValueError(
                f"the key verifier refused this client ({status}): check its "
                "credentials and its --may-vouch-client-ip permission"
            )
        if status == 401:
            return Verdict(None, InvalidToken, "the API key is invalid, revoked or expired")
        if status == 403:
            return Verdict(None, ForbiddenSource, "the API key may not be used from this address")
        if status == 429:
            raise RateLimited("the API key's rate limit is reached", retry_after=_retry(response))
        if status != 200:
            raise ValueError(f"the key verifier answered {status}")
        body = response.json()
        if not isinstance(body, dict) or body.get("active") is not True:
            return Verdict(None, InvalidToken, "the API key is invalid, revoked or expired")
        return Verdict(key_principal(body))


# Answers about the verifier's own client: a wrong secret, or client_ip without the permission.
_OUR_FAULT = {(401, "invalid_client"), (403, "unauthorized_client")}


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


def _refuse_malformed(key: str) -> None:
    """A mistyped or invented key is refused here, offline: it never costs a request."""
    if parse_api_key(key) is None:
        raise InvalidToken("the API key is malformed or its checksum is wrong")


def key_principal(body: dict[str, Any]) -> Principal:
    owner, key_id, scope = body.get("owner"), body.get("key_id"), body.get("scope", "")
    expires_at = body.get("expires_at")
    if not isinstance(owner, str) or not isinstance(key_id, str) or not isinstance(scope, str):
        raise ValueError("the key verifier's answer is missing owner, key_id or scope")
    return Principal(
        subject=owner,
        client_id=None,
        scopes=frozenset(scope.split()),
        # A key bound to resources names them ("aud") and is held to them; an unbound key names
        # none and passes the audience rule (guard/audience.py).
        audience=audience_of(body.get("aud")),
        issuer=None,
        expires_at=expires_at if type(expires_at) is int else None,  # not bool, not float
        token_id=key_id,
        kind="api_key",
        claims=body,
    )


def _retry(response: httpx.Response) -> int:
    value = response.headers.get("retry-after", "")
    return int(value) if value.isascii() and value.isdigit() else 1
