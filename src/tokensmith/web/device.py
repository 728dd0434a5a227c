"""HTTP for the device grant (RFC 8628): /device_authorization, and the page /device where the
person signs in, types the code their device shows, and approves or denies.

The page is like the login and consent pages: server-rendered, no script, a CSRF token bound to
an HttpOnly cookie on every form, the same session cookie (a person already signed in is not
asked again). A code from ``verification_uri_complete`` only fills the box: the person submits
it, and then confirms on a page that names the client and the scopes (§5.4, remote phishing).
Code entry is locked out like passwords, per user and per address (``runtime/throttle.py``):
each wrong, expired or malformed code is a failed attempt, so guessing codes is bounded. Per
user, not per session: signing in again makes a new session for free, and must not make new
guesses (the lock is named by the account name, so ``lockouts clear --account`` lifts it).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.accounts.sessions import Session
from tokensmith.accounts.users import User
from tokensmith.core.concurrency import Busy
from tokensmith.core.sealing import SealError
from tokensmith.core.secrets import b64url, b64url_decode, random_token
from tokensmith.errors import OAuthError, TooManyRequests
from tokensmith.oauth.device_approval import Found
from tokensmith.oauth.params import Params
from tokensmith.oauth.user_codes import format_user_code, normalise_user_code
from tokensmith.runtime.services import Services
from tokensmith.web.cookies import (
    csrf_cookie,
    csrf_ok,
    csrf_token,
    current_session,
    session_cookie,
    set_cookie,
)
from tokensmith.web.endpoints import client_endpoint
from tokensmith.web.forms import read_form
from tokensmith.web.pages import page as render
from tokensmith.web.signin import (
    check_password,
    record_login,
    refusal_message,
    refusal_status,
    start_session,
)
from tokensmith.web.state import protocol_of, services_of
from tokensmith.web.throttle import account_name, attempt, peer

__all__ = ["authorization", "page"]

authorization = client_endpoint(lambda request: protocol_of(request).device_authorization)

_CSRF_TTL = 3600
_CONFIRM_TTL = 300  # how long the confirmation form stays good
_MAX_SEALED = 512
_MAX_TYPED = 64  # what the code box takes back into the page


async def page(request: Request) -> Response:
    services = services_of(request)
    if request.method == "POST":
        return await _submitted(request, services)
    try:
        query = Params(request.query_params.multi_items())
    except OAuthError as error:
        return _message(error.description, error.status, title="Invalid request")
    typed = (query.get("user_code") or "")[:_MAX_TYPED]
    session = await current_session(request)
    if session is None:
        return await _show(request, services, "signin", user_code=typed)
    return await _show(request, services, "code", session=session, user_code=typed)


async def _submitted(request: Request, services: Services) -> Response:
    try:
        form = await read_form(request, services.settings.max_body_bytes)
    except OAuthError as error:
        return _message(error.description, error.status, title="Invalid request")
    if not csrf_ok(request, services, form.get("csrf_token")):
        return _message("This form is no longer valid. Open the page again.", 403, "Form expired")
    step = form.get("step")
    if step == "signin":
        return await _sign_in(request, services, form)
    session = await current_session(request)
    typed = (form.get("user_code") or "")[:_MAX_TYPED]
    if session is None:
        return await _show(request, services, "signin", user_code=typed, status=401)
    if step == "code":
        return await _enter_code(request, services, session, typed)
    if step == "decide":
        return await _decide(request, services, session, form)
    return _message("This form is not one of ours.", 400, title="Invalid request")


async def _sign_in(request: Request, services: Services, form: Params) -> Response:
    username = form.get("username") or ""
    typed = (form.get("user_code") or "")[:_MAX_TYPED]
    try:
        user = await check_password(request, services, username, form.get("password") or "")
    except (TooManyRequests, Busy) as refusal:
        error = refusal_message(refusal)
        return await _retry(request, services, "signin", error, refusal, typed, username)
    record_login(services, user, username, page="device")
    if user is None:
        error = "Incorrect username or password."
        return await _show(
            request, services, "signin", error=error, user_code=typed, username=username, status=401
        )
    session, value = await start_session(request, services, user)
    response = await _show(request, services, "code", session=session, user_code=typed)
    set_cookie(response, services, session_cookie(services), value, services.settings.session_ttl)
    return response


async def _enter_code(
    request: Request, services: Services, session: Session, typed: str
) -> Response:
    approval = protocol_of(request).device_approval
    user = await _enabled_user(services, session)
    if user is None:
        return await _show(request, services, "signin", user_code=typed, status=401)
    names = {"user_code": account_name(user.username), "user_code_address": peer(request)}
    try:
        async with attempt(request, **names) as tried:
            found = await approval.find(typed, session)
            if found is None:
                tried.failed()
    except TooManyRequests as locked:
        error = f"Too many wrong codes. Try again in {locked.retry_after} seconds."
        return await _retry(request, services, "code", error, locked, typed, session=session)
    if found is None:
        error = "That code is not valid, or it has expired. Check the code on your device."
        return await _show(
            request, services, "code", session=session, user_code=typed, error=error, status=400
        )
    return await _confirm(request, services, session, found, typed)


async def _confirm(
    request: Request, services: Services, session: Session, found: Found, typed: str
) -> Response:
    """The last page before the decision: the client, the scopes, the code, and two buttons."""
    cookie = _browser(request)
    payload = {
        "grant": found.grant.device_code_hash.hex(),
        "session": session.session_ref,
        "exp": services.clock.now() + _CONFIRM_TTL,
    }
    sealed = services.master.seal(json.dumps(payload).encode(), _context(cookie))
    return await _show(
        request,
        services,
        "confirm",
        session=session,
        cookie=cookie,
        client_name=found.client.name,
        scopes=found.grant.scope.split(),
        grant=b64url(sealed),
        user_code=format_user_code(normalise_user_code(typed) or ""),
    )


async def _decide(request: Request, services: Services, session: Session, form: Params) -> Response:
    approval = protocol_of(request).device_approval
    device_code_hash = _open(services, form.get("grant"), _browser(request), session)
    found = await approval.reopen(device_code_hash) if device_code_hash else None
    gone = "This request has expired or was already answered. Start again on your device."
    if await _enabled_user(services, session) is None:
        return await _show(request, services, "signin", status=401)
    if found is None:
        return _message(gone, 400, title="Request expired")
    approved = form.get("decision") == "allow"
    if not await approval.decide(found, session, approved=approved):
        return _message(gone, 400, title="Request expired")
    if approved:
        return _message(f"{found.client.name} is now connected.", 200, title="Device connected")
    return _message(f"{found.client.name} was not given access.", 200, title="Request denied")


async def _enabled_user(services: Services, session: Session) -> User | None:
    """The session's user, unless deleted or disabled since it signed in."""
    user = await services.users.get(session.user_id)
    return user if user is not None and not user.disabled else None


def _open(services: Services, sealed: str | None, cookie: str, session: Session) -> bytes | None:
    """The device code hash a confirmation form names, if sealed for this browser and session
    and not expired."""
    if not sealed or len(sealed) > _MAX_SEALED:
        return None
    try:
        payload = json.loads(services.master.unseal(b64url_decode(sealed), _context(cookie)))
        grant, owner, expires = payload["grant"], payload["session"], payload["exp"]
        if owner != session.session_ref or not isinstance(expires, int):
            return None
        return bytes.fromhex(grant) if expires > services.clock.now() else None
    except (SealError, ValueError, KeyError, TypeError):
        return None


def _context(cookie: str) -> str:
    return f"device-confirm:v1:{hashlib.sha256(cookie.encode()).hexdigest()}"


def _browser(request: Request) -> str:
    """This browser's CSRF cookie; a new one if it has none (the page sets it)."""
    services = services_of(request)
    cookie = request.cookies.get(csrf_cookie(services))
    return cookie if cookie and len(cookie) <= 128 else random_token(32)


async def _show(
    request: Request,
    services: Services,
    step: str,
    *,
    session: Session | None = None,
    cookie: str | None = None,
    status: int = 200,
    **context: Any,
) -> Response:
    cookie = cookie or _browser(request)
    username = context.pop("username", "")
    if session is not None:
        user = await services.users.get(session.user_id)
        username = user.username if user else ""
    titles = {"signin": "Sign in", "code": "Connect a device", "confirm": "Allow access?"}
    response = render(
        "device.html",
        status,
        title=titles.get(step, "Connect a device"),
        step=step,
        csrf_token=csrf_token(services, cookie),
        username=username,
        **context,
    )
    set_cookie(response, services, csrf_cookie(services), cookie, _CSRF_TTL)
    return response


async def _retry(
    request: Request,
    services: Services,
    step: str,
    error: str,
    refusal: TooManyRequests | Busy,
    typed: str,
    username: str = "",
    *,
    session: Session | None = None,
) -> Response:
    """The form again, 429 for a lock or 503 while hashing is saturated, with Retry-After."""
    response = await _show(
        request,
        services,
        step,
        session=session,
        error=error,
        user_code=typed,
        username=username,
        status=refusal_status(refusal),
    )
    response.headers["retry-after"] = str(refusal.retry_after)
    return response


def _message(message: str, status: int, title: str) -> Response:
    return render("device.html", status, title=title, step="done", message=message)
