"""Exchange mode: the gateway asks Tokensmith's token endpoint for each transaction token
(RFC 8693 token exchange, draft-ietf-oauth-transaction-tokens §7), authenticating as its
confidential client (HTTP Basic, the credentials it already introspects with).

The subject token is the outside credential itself: an access token, or an API key with
Tokensmith's API-key token type. ``audience`` is the trust domain, ``request_context`` the
base64url JSON of ``rctx``, ``request_details`` that of ``azd`` (the outside client and its
scope) and, where the route trusts the caller's ``Txn-Id``, its ``txn``; otherwise the server
names the transaction. No ``scope`` is sent: the token keeps the credential's scope, as in mint
mode, so the upstream's own scope checks see what the caller may do.

An answer serves the same credential, trust domain, caller address (and trusted ``Txn-Id``) for
at most ``exchange_cache_seconds`` and half its lifetime, so a burst of calls costs one exchange;
those calls then share one ``txn``.
Fail closed: the server unreachable, slow, answering 5xx or anything but a Txn-Token is 503;
refusing the subject token (``invalid_grant``) is 401, as for any bad credential; any other
refusal means our own client is misconfigured, and is 503 with the reason in the log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from tokensmith.core.txn_tokens import TXN_TOKEN_TYPE_URN
from tokensmith.gateway.tokens import TxnRequest, authn_method, client_of
from tokensmith.guard.cache import ExpiringCache
from tokensmith.guard.errors import InvalidToken, ServiceUnavailable

__all__ = ["ACCESS_TOKEN_TYPE", "API_KEY_TOKEN_TYPE", "TOKEN_EXCHANGE", "ExchangedTxnTokens"]

log = logging.getLogger("tokensmith.gateway")

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
API_KEY_TOKEN_TYPE = "urn:tokensmith:params:oauth:token-type:api-key"
_MAX_TOKEN_CHARS = 8192


class ExchangedTxnTokens:
    def __init__(
        self,
        token_endpoint: str,
        *,
        client_id: str,
        client_secret: str,
        workload: str,
        cache_seconds: float = 10.0,
        timeout: float = 3.0,
        monotonic: Callable[[], float] = time.monotonic,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.token_endpoint = token_endpoint
        self.workload = workload
        self.cache_seconds = cache_seconds
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self._monotonic = monotonic
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._cache: ExpiringCache[tuple[bytes, str, str, str], str] = ExpiringCache(10_000)

    def jwks(self) -> dict[str, Any]:
        return {"keys": []}  # the server signs: upstreams read its JWKS, not ours

    async def issue(self, request: TxnRequest) -> str:
        # Keyed by a digest: the cache holds no outside credential in the clear.
        name = (
            hashlib.sha256(request.credential.encode()).digest(),
            request.trust_domain,
            request.source_ip,
            request.txn if request.txn_from_caller else "",
        )
        now = self._monotonic()
        cached = self._cache.get(name, now)
        if cached is not None:
            return cached
        token, lifetime = self._judge(await self._post(request))
        keep = min(self.cache_seconds, lifetime / 2)
        if keep > 0:
            self._cache.put(name, token, now + keep)
        return token

    async def _post(self, request: TxnRequest) -> httpx.Response:
        principal = request.principal
        context = {
            "req_ip": request.source_ip,
            "authn": authn_method(principal),
            "req_wl": self.workload,
        }
        details: dict[str, Any] = {"client_id": client_of(principal), "scope": principal.scope}
        if request.txn_from_caller:
            details["txn"] = request.txn
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "requested_token_type": TXN_TOKEN_TYPE_URN,
            "subject_token": request.credential,
            "subject_token_type": (
                API_KEY_TOKEN_TYPE if request.credential_kind == "api_key" else ACCESS_TOKEN_TYPE
            ),
            "audience": request.trust_domain,
            "request_context": _b64json(context),
            "request_details": _b64json(details),
        }
        try:
            return await self._client.post(
                self.token_endpoint,
                data=form,
                auth=self._auth,
                headers={"accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            log.warning("token exchange unreachable", extra={"error": type(exc).__name__})
            raise ServiceUnavailable("transaction tokens cannot be issued right now") from None

    def _judge(self, response: httpx.Response) -> tuple[str, float]:
        """The Txn-Token and its lifetime in seconds, or the refusal the caller sees."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _unavailable(f"token exchange answered {response.status_code}, not JSON")
        if response.status_code == 400 and body.get("error") == "invalid_grant":
            raise InvalidToken("the authorization server refused to exchange this credential")
        if response.status_code != 200:
            return _unavailable(f"token exchange refused: {body.get('error')!r}")
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if body.get("issued_token_type") != TXN_TOKEN_TYPE_URN:
            return _unavailable("token exchange issued another token type")
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_CHARS:
            return _unavailable("token exchange answered no usable token")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
            lifetime = 0  # unknown: use it for this request only
        return token, float(lifetime)

    async def aclose(self) -> None:
        await self._client.aclose()


def _unavailable(reason: str) -> tuple[str, float]:
    log.error("no transaction token; refusing", extra={"reason": reason[:200]})
    raise ServiceUnavailable("transaction tokens cannot be issued right now")


def _b64json(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
