"""Signing in where no browser can open: the device authorization grant (RFC 8628).

The person is shown where to go and which code to type (§3.3); the kit polls the token
endpoint no faster than ``interval`` (default 5 s, §3.2), adds 5 s to it at every ``slow_down``
(§3.5), backs off when the server cannot be reached, and ends at ``expired_token``,
``access_denied`` or the code's ``expires_in``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tokensmith.client.discovery import ServerMetadata, check_url
from tokensmith.client.dpop import DpopKey, choose_dpop
from tokensmith.client.errors import LoginError, ServerRefused, TokenEndpointUnavailable
from tokensmith.client.session import Session
from tokensmith.client.signin import finish_sign_in
from tokensmith.client.storage import SessionStore
from tokensmith.client.tokens import post_form
from tokensmith.core.clock import Clock, SystemClock

__all__ = ["DEVICE_CODE_GRANT", "DeviceAuthorization", "device_login", "poll_device_token"]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_DEFAULT_INTERVAL = 5
_SLOW_DOWN = 5
_MAX_BACKOFF = 60
_MAX_INTERVAL = 60  # a larger interval (or expires_in) would have the sign-in sleep for ever
_MAX_EXPIRES_IN = 3600


@dataclass(frozen=True)
class DeviceAuthorization:
    """The device authorization response (RFC 8628 §3.2); the device code stays out of reprs."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: int
    interval: int

    @classmethod
    def from_response(cls, body: dict[str, Any], now: int) -> DeviceAuthorization:
        device_code, user_code = body.get("device_code"), body.get("user_code")
        uri, complete = body.get("verification_uri"), body.get("verification_uri_complete")
        expires_in, interval = body.get("expires_in"), body.get("interval", _DEFAULT_INTERVAL)
        if not (isinstance(device_code, str) and device_code and isinstance(uri, str)):
            raise LoginError("the device authorization answer is incomplete")
        if not uri.isprintable() or (isinstance(complete, str) and not complete.isprintable()):
            raise LoginError("the device authorization answer's verification URI is unprintable")
        if not (isinstance(user_code, str) and user_code.isprintable() and len(user_code) < 64):
            raise LoginError("the device authorization answer has no usable user_code")
        check_url(uri, "verification_uri")
        if complete is not None and not isinstance(complete, str):
            raise LoginError("the device authorization answer's verification_uri_complete is bad")
        if complete is not None:
            check_url(complete, "verification_uri_complete")
        if type(expires_in) is not int or expires_in <= 0:
            raise LoginError("the device authorization answer has no expires_in")
        if type(interval) is not int or interval <= 0:
            interval = _DEFAULT_INTERVAL
        expires_at = now + min(expires_in, _MAX_EXPIRES_IN)
        return cls(device_code, user_code, uri, complete, expires_at, min(interval, _MAX_INTERVAL))

    def instructions(self) -> str:
        where = self.verification_uri_complete or self.verification_uri
        return (
            f"tokensmith: to sign in, open {where} and enter the code {self.user_code}"
            if self.verification_uri_complete is None
            else f"tokensmith: to sign in, open {where} (the code is {self.user_code})"
        )


def start_device_authorization(
    metadata: ServerMetadata, client_id: str, scope: str, http: httpx.Client, now: int
) -> DeviceAuthorization:
    endpoint = metadata.device_authorization_endpoint
    if endpoint is None:
        raise LoginError(f"{metadata.issuer} offers no device authorization endpoint")
    form = {"client_id": client_id, "scope": scope}
    body = post_form(http, endpoint, form, what="the device authorization endpoint")
    return DeviceAuthorization.from_response(body, now)


def poll_device_token(
    metadata: ServerMetadata,
    client_id: str,
    grant: DeviceAuthorization,
    http: httpx.Client,
    *,
    clock: Clock,
    sleep: Callable[[float], object] = time.sleep,
    dpop: DpopKey | None = None,
) -> dict[str, Any]:
    """Poll until the person decided (§3.4, §3.5); the token response, or LoginError. With
    ``dpop`` each poll carries a proof (RFC 9449 §5): the tokens are bound to that key."""
    interval = grant.interval
    form = {"grant_type": DEVICE_CODE_GRANT, "device_code": grant.device_code}
    form["client_id"] = client_id
    while True:
        if clock.now() + interval > grant.expires_at:
            raise LoginError("the sign-in code expired before it was used", error="expired_token")
        sleep(interval)
        try:
            return post_form(http, metadata.token_endpoint, form, dpop=dpop)
        except TokenEndpointUnavailable:
            interval = min(interval * 2, _MAX_BACKOFF)  # §3.5: back off on a timeout
        except ServerRefused as refused:
            if refused.error == "authorization_pending":
                continue
            if refused.error == "slow_down":
                interval += _SLOW_DOWN  # and kept for every later request (§3.5)
                continue
            if refused.error == "access_denied":
                raise LoginError("the sign-in was denied", error="access_denied") from None
            if refused.error == "expired_token":
                raise LoginError("the sign-in code expired", error="expired_token") from None
            raise


def device_login(
    metadata: ServerMetadata,
    client_id: str,
    store: SessionStore,
    *,
    scope: str = "openid",
    http: httpx.Client | None = None,
    clock: Clock | None = None,
    home: Path | None = None,
    notify: Callable[[str], object] | None = None,
    sleep: Callable[[float], object] = time.sleep,
    dpop: bool | None = None,
) -> Session:
    """Sign a person in with the device flow; the session is stored and returned. ``dpop`` as
    for ``login``: None binds the tokens when the issuer offers DPoP."""
    if http is None:
        with httpx.Client(timeout=10) as own:
            session = device_login(
                metadata, client_id, store, scope=scope, http=own, clock=clock, home=home,
                notify=notify, sleep=sleep, dpop=dpop,
            )  # fmt: skip
        session.replace_http(httpx.Client(timeout=10))
        return session
    clock = clock or SystemClock()
    key = choose_dpop(metadata, dpop, clock=clock)
    grant = start_device_authorization(metadata, client_id, scope, http, clock.now())
    (notify or _stderr)(grant.instructions())
    body = poll_device_token(metadata, client_id, grant, http, clock=clock, sleep=sleep, dpop=key)
    return finish_sign_in(
        metadata,
        client_id,
        body,
        scope=scope,
        nonce=None,
        store=store,
        http=http,
        clock=clock,
        home=home,
        dpop=key,
    )


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
