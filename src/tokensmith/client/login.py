"""Signing a person in from a native app or a CLI (RFC 8252): the authorization code flow with
PKCE S256 (RFC 7636) and a loopback redirect, in the system browser, never an embedded view.

``state`` and ``nonce`` are fresh from ``secrets`` for every sign-in and checked in constant
time; ``iss`` (RFC 9207 §2.4) is checked whenever it comes back, and required when the metadata
says the server sends it; the ID token is validated (``id_tokens.py``). Any mismatch ends the
sign-in with LoginError and nothing stored. Where no browser can be opened (``webbrowser``
finds none, or ``open`` says it failed), the device flow takes over (``device.py``).
"""

from __future__ import annotations

import hmac
import secrets
import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx

from tokensmith.client.device import device_login
from tokensmith.client.discovery import ServerMetadata
from tokensmith.client.dpop import DpopKey, choose_dpop
from tokensmith.client.errors import LoginError
from tokensmith.client.loopback import LoopbackListener
from tokensmith.client.par import by_reference, par_endpoint, push
from tokensmith.client.session import Session
from tokensmith.client.signin import finish_sign_in
from tokensmith.client.storage import SessionStore
from tokensmith.client.tokens import post_form
from tokensmith.core.clock import Clock, SystemClock
from tokensmith.core.secrets import pkce_s256

__all__ = ["Opener", "authorization_params", "authorization_url", "login", "system_browser"]

Opener = Callable[[str], bool]


class NoBrowser(LoginError):
    """No browser could be opened: the device flow may take over."""


def system_browser(url: str) -> bool:
    """``webbrowser``'s choice (``$BROWSER`` first); False where there is none."""
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    return bool(browser.open(url))


def login(
    metadata: ServerMetadata,
    client_id: str,
    store: SessionStore,
    *,
    scope: str = "openid",
    opener: Opener = system_browser,
    device_fallback: bool = True,
    timeout: float = 300,
    http: httpx.Client | None = None,
    clock: Clock | None = None,
    home: Path | None = None,
    notify: Callable[[str], object] | None = None,
    dpop: bool | None = None,
) -> Session:
    """Sign a person in; the session is stored, and returned with its first access token.

    ``dpop``: bind the session's tokens to a new key (RFC 9449); None (the default) does when
    the issuer's metadata lists ``dpop_signing_alg_values_supported``, False never does."""
    if http is None:
        with httpx.Client(timeout=10) as own:
            session = login(
                metadata, client_id, store, scope=scope, opener=opener,
                device_fallback=device_fallback, timeout=timeout, http=own, clock=clock,
                home=home, notify=notify, dpop=dpop,
            )  # fmt: skip
        session.replace_http(httpx.Client(timeout=10))
        return session
    clock = clock or SystemClock()
    key = choose_dpop(metadata, dpop, clock=clock)
    try:
        return _browser_login(
            metadata, client_id, store, scope, opener, timeout, http, clock, home, key
        )
    except NoBrowser:
        if not device_fallback or metadata.device_authorization_endpoint is None:
            raise
    tell = notify or _stderr
    tell("tokensmith: no browser could be opened; signing in with a code instead")
    return device_login(
        metadata, client_id, store, scope=scope, http=http, clock=clock, home=home, notify=tell,
        dpop=key is not None,
    )  # fmt: skip


def authorization_url(
    endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    nonce: str,
    code_challenge: str,
    resources: tuple[str, ...] = (),
) -> str:
    """An authorization request (code, PKCE S256, RFC 7636; RFC 8707 ``resource`` each once)."""
    query = urlencode(
        authorization_params(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            nonce=nonce,
            code_challenge=code_challenge,
            resources=resources,
        )
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def authorization_params(
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    nonce: str,
    code_challenge: str,
    resources: tuple[str, ...] = (),
) -> list[tuple[str, str]]:
    """The authorization request's parameters: in the URL, or pushed (``client/par.py``)."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    return [*params.items(), *(("resource", r) for r in resources)]


def _browser_login(
    metadata: ServerMetadata,
    client_id: str,
    store: SessionStore,
    scope: str,
    opener: Opener,
    timeout: float,
    http: httpx.Client,
    clock: Clock,
    home: Path | None,
    dpop: DpopKey | None,
) -> Session:
    if metadata.authorization_endpoint is None:
        raise LoginError(f"{metadata.issuer} has no authorization endpoint")
    verifier = secrets.token_urlsafe(48)  # 64 characters of [A-Za-z0-9-_] (RFC 7636 §4.1)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with LoopbackListener(state) as listener:
        params = authorization_params(
            client_id=client_id,
            redirect_uri=listener.redirect_uri,
            scope=scope,
            state=state,
            nonce=nonce,
            code_challenge=pkce_s256(verifier),
        )
        url = _url(metadata, metadata.authorization_endpoint, client_id, params, http)
        if not opener(url):
            raise NoBrowser("no browser could be opened")
        answer = listener.wait(timeout)
    code = _check_answer(answer, state, metadata)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": listener.redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    body = post_form(http, metadata.token_endpoint, form, dpop=dpop)
    return finish_sign_in(
        metadata,
        client_id,
        body,
        scope=scope,
        nonce=nonce,
        store=store,
        http=http,
        clock=clock,
        home=home,
        dpop=dpop,
    )


def _url(
    metadata: ServerMetadata,
    endpoint: str,
    client_id: str,
    params: list[tuple[str, str]],
    http: httpx.Client,
) -> str:
    """Pushed first when the issuer requires it (RFC 9126 §5: a public client pushes with its
    client_id, as it calls the token endpoint); otherwise the request is the URL's query."""
    par = par_endpoint(metadata)
    if par is None:
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"
    return by_reference(endpoint, client_id, push(http, par, params))


def _check_answer(answer: dict[str, str], state: str, metadata: ServerMetadata) -> str:
    """The code, once ``state`` and ``iss`` match; LoginError for anything else."""
    got = answer.get("state", "")
    if not hmac.compare_digest(got.encode(), state.encode()):
        raise LoginError("the sign-in answer's state does not match; refused (CSRF?)")
    iss = answer.get("iss")
    if iss is None and metadata.iss_parameter_supported:
        raise LoginError("the sign-in answer has no iss, which this server sends; refused")
    if iss is not None and iss != metadata.issuer:  # RFC 9207 §2.4: simple string comparison
        raise LoginError("the sign-in answer is from another issuer; refused (mix-up?)")
    error = answer.get("error")
    if error is not None:
        shown = error if error.isprintable() and len(error) < 64 else "unknown"
        raise LoginError(f"the server refused the sign-in: {shown}", error=shown)
    code = answer.get("code")
    if not code:
        raise LoginError("the sign-in answer carries no code")
    return code


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
