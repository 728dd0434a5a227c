"""Access tokens in memory, the token endpoint's answers (RFC 6749 §5.1, §5.2), and the
single-flight cache every ``httpx.Auth`` of the kit stands on.

An access token is used until shortly before it expires (``skew``: 10 % of its lifetime, at
most 30 s), then replaced. When the replacement fails because the server is unreachable and the
token has not expired yet, the token keeps serving: an outage of the token endpoint is no outage
of the API. One fetch at a time: threads wait on one lock and reuse the result, asyncio tasks do
the same through a worker thread (the fetch may also wait on a file lock, ``locking.py``, which
must never block an event loop).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from tokensmith.client.bounded import send_bounded, send_bounded_async
from tokensmith.client.errors import (
    ClientError,
    ServerRefused,
    SessionExpired,
    TokenEndpointUnavailable,
)
from tokensmith.core.clock import Clock, SystemClock
from tokensmith.core.secrets import redact_secrets

if TYPE_CHECKING:
    from tokensmith.client.dpop import DpopKey

__all__ = [
    "AccessToken",
    "Form",
    "SingleFlight",
    "post_form",
    "post_form_async",
    "token_from_response",
]

log = logging.getLogger("tokensmith.client")
_MAX_SKEW = 30
_MAX_RESPONSE_BYTES = 64 * 1024
_DEFAULT_LIFETIME = 300  # expires_in is RECOMMENDED only (RFC 6749 §5.1); assume a short life
_MAX_LIFETIME = 24 * 3600  # a longer expires_in is believed up to a day: refreshed at least daily
# RFC 6749 §5.2: an error code is a few printable ASCII characters, no '"' or '\'.
_ERROR_CODE = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}")
# What a request of the kit may send that an error answer must not echo into a message.
_SECRET_FIELDS = ("code", "code_verifier", "refresh_token", "device_code", "client_secret",
                  "client_assertion", "token", "subject_token", "actor_token")  # fmt: skip


@dataclass(frozen=True)
class AccessToken:
    """An access token, held in memory only; its value never shows in a repr. ``token_type``
    is ``Bearer``, or ``DPoP`` for one bound to the session's key (RFC 9449 §5)."""

    value: str = field(repr=False)
    expires_at: int
    issued_at: int
    scope: str | None = None
    token_type: str = "Bearer"

    def refresh_due(self, now: int) -> bool:
        skew = min(_MAX_SKEW, (self.expires_at - self.issued_at) // 10)
        return now >= self.expires_at - skew

    def expired(self, now: int) -> bool:
        return now >= self.expires_at


def token_from_response(body: Mapping[str, Any], now: int, *, dpop: bool = False) -> AccessToken:
    """``dpop``: the request carried a proof, so a ``DPoP`` token is expected (and usable)."""
    value = body.get("access_token")
    token_type = body.get("token_type")
    if not isinstance(value, str) or not value or not isinstance(token_type, str):
        raise ClientError("the token endpoint answered without an access token")
    kind = "DPoP" if dpop and token_type.lower() == "dpop" else "Bearer"
    if token_type.lower() != kind.lower():
        raise ClientError(f"the token endpoint issued an unsupported token type {token_type!r}")
    expires_in = body.get("expires_in")
    lifetime = _DEFAULT_LIFETIME
    if type(expires_in) is int and expires_in > 0:
        lifetime = min(expires_in, _MAX_LIFETIME)
    scope = body.get("scope")
    scope = scope if isinstance(scope, str) else None
    return AccessToken(value, now + lifetime, now, scope, kind)


Form = Mapping[str, str] | Sequence[tuple[str, str]]  # pairs when a name repeats (resource)


def post_form(
    http: httpx.Client,
    url: str,
    form: Form,
    *,
    headers: Mapping[str, str] | None = None,
    what: str = "the token endpoint",
    expect: int = 200,
    dpop: DpopKey | None = None,
) -> dict[str, Any]:
    """POST a form and read a JSON object (RFC 6749 §5.1), answered with status ``expect`` (201
    at /par, RFC 9126 §2.2); an OAuth error answer raises ServerRefused (SessionExpired for a
    refused refresh token), no answer or a 5xx raises TokenEndpointUnavailable. The form (which
    holds secrets) is never part of any message.

    With ``dpop``, each attempt carries a fresh proof, and a ``use_dpop_nonce`` answer is
    retried once with the server's nonce (RFC 9449 §8); a second one is the answer."""
    pairs = _pairs(form)
    for retry in (False, True):
        request = http.build_request(
            "POST", url, content=urlencode(pairs), headers=_form_headers(headers, dpop, url)
        )
        try:
            response, content = send_bounded(http, request, _MAX_RESPONSE_BYTES)
        except httpx.HTTPError as exc:
            raise TokenEndpointUnavailable(
                f"{what} is unreachable ({type(exc).__name__})"
            ) from None
        if retry or not _asks_nonce(dpop, url, response, content):
            break
    return _answer(response, content, pairs, what, expect)


async def post_form_async(
    http: httpx.AsyncClient,
    url: str,
    form: Form,
    *,
    headers: Mapping[str, str] | None = None,
    what: str = "the token endpoint",
    expect: int = 200,
    dpop: DpopKey | None = None,
) -> dict[str, Any]:
    """``post_form`` for asyncio code (the BFF's token requests)."""
    pairs = _pairs(form)
    for retry in (False, True):
        request = http.build_request(
            "POST", url, content=urlencode(pairs), headers=_form_headers(headers, dpop, url)
        )
        try:
            response, content = await send_bounded_async(http, request, _MAX_RESPONSE_BYTES)
        except httpx.HTTPError as exc:
            raise TokenEndpointUnavailable(
                f"{what} is unreachable ({type(exc).__name__})"
            ) from None
        if retry or not _asks_nonce(dpop, url, response, content):
            break
    return _answer(response, content, pairs, what, expect)


def _asks_nonce(
    dpop: DpopKey | None, url: str, response: httpx.Response, content: bytes | None
) -> bool:
    """Whether the answer is ``use_dpop_nonce`` with a nonce to retry with (RFC 9449 §8)."""
    if dpop is None:
        return False
    fresh = dpop.remember_nonce(url, response)
    if response.status_code != 400 or dpop.nonce_for(url) is None:
        return False
    body = _json_object(content)
    return fresh and body is not None and body.get("error") == "use_dpop_nonce"


def _pairs(form: Form) -> list[tuple[str, str]]:
    return list(form.items()) if isinstance(form, Mapping) else list(form)


def _form_headers(
    headers: Mapping[str, str] | None, dpop: DpopKey | None = None, url: str = ""
) -> dict[str, str]:
    sent = {
        "accept": "application/json",
        "content-type": "application/x-www-form-urlencoded",
        **(headers or {}),
    }
    if dpop is not None:
        sent["dpop"] = dpop.proof("POST", url)  # RFC 9449 §5: no ath at the token endpoint
    return sent


def _answer(
    response: httpx.Response,
    content: bytes | None,
    form: list[tuple[str, str]],
    what: str,
    expect: int = 200,
) -> dict[str, Any]:
    if response.status_code >= 500:
        raise TokenEndpointUnavailable(f"{what} answered {response.status_code}")
    body = _json_object(content)
    if response.status_code == expect and body is not None:
        return body
    error = body.get("error") if body else None
    if not isinstance(error, str) or not _ERROR_CODE.fullmatch(error):
        raise ServerRefused(f"{what} answered {response.status_code}")
    description = body.get("error_description") if body else None
    text = f"{what} refused: {error}"
    if isinstance(description, str) and description.isprintable():
        text += f" ({_scrubbed(description, form)[:200]})"
    refresh = ("grant_type", "refresh_token") in form
    kind = SessionExpired if error == "invalid_grant" and refresh else ServerRefused
    raise kind(text, error=error)


def _scrubbed(description: str, form: list[tuple[str, str]]) -> str:
    """``description`` without any secret the request sent (a server may quote what it got) or
    anything shaped like a token; cut only afterwards, so no part of one survives the cut."""
    for name, value in form:
        if name in _SECRET_FIELDS and value:
            description = description.replace(value, "[redacted]")
    return redact_secrets(description)


def _json_object(content: bytes | None) -> dict[str, Any] | None:
    if content is None:  # over _MAX_RESPONSE_BYTES
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class SingleFlight:
    """The current access token, replaced by ``fetch`` when due: one fetch at a time.

    ``get(stale=token)`` forces a replacement of ``token`` (the API said it is invalid), unless
    another caller already replaced it, whose result is then reused."""

    def __init__(self, fetch: Callable[[], AccessToken], clock: Clock | None = None) -> None:
        self._fetch = fetch
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self.fetches = 0  # how many times fetch ran; for tests and metrics

    @property
    def current(self) -> AccessToken | None:
        return self._token

    def forget(self) -> None:
        self._token = None

    def seed(self, token: AccessToken) -> None:
        """Start from a token obtained elsewhere (the sign-in's own)."""
        self._token = token

    def _ready(self, stale: AccessToken | None) -> AccessToken | None:
        token = self._token
        if token is not None and token is not stale and not token.refresh_due(self._clock.now()):
            return token
        return None

    def get(self, stale: AccessToken | None = None) -> AccessToken:
        ready = self._ready(stale)
        if ready is not None:
            return ready
        with self._lock:
            ready = self._ready(stale)
            if ready is not None:
                return ready
            old = self._token
            try:
                self.fetches += 1
                token = self._fetch()
            except TokenEndpointUnavailable:
                if old is not None and old is not stale and not old.expired(self._clock.now()):
                    log.warning("token endpoint unavailable; the cached access token still serves")
                    return old
                raise
            self._token = token
            return token

    async def get_async(self, stale: AccessToken | None = None) -> AccessToken:
        ready = self._ready(stale)
        if ready is not None:
            return ready
        return await asyncio.to_thread(self.get, stale)
