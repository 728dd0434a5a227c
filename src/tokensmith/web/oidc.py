"""HTTP for OpenID Connect userinfo (OIDC Core §5.3) and RP-initiated logout."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.accounts.sessions import Session
from tokensmith.core.secrets import random_token
from tokensmith.errors import OAuthError
from tokensmith.oauth.clients import Client
from tokensmith.oauth.params import Params
from tokensmith.oidc.encryption import recipient
from tokensmith.oidc.logout import logout_redirect, read_id_token_hint
from tokensmith.oidc.userinfo import USERINFO_JWT_TYPE, userinfo_claims, userinfo_jwt
from tokensmith.runtime.services import Services
from tokensmith.web.bearer import BearerRefused, bearer_error, bearer_token, bound_key
from tokensmith.web.cookies import (
    clear_cookie,
    csrf_cookie,
    csrf_ok,
    csrf_token,
    current_session,
    session_cookie,
    set_cookie,
)
from tokensmith.web.cors import allow_client_origin
from tokensmith.web.forms import read_form
from tokensmith.web.pages import page
from tokensmith.web.responses import json_response
from tokensmith.web.state import services_of

__all__ = ["logout", "logout_confirmed", "userinfo"]


async def userinfo(request: Request) -> Response:
    try:
        record = await bearer_token(request)
    except BearerRefused as refused:
        return refused.response()
    scopes = frozenset(record.scope.split())
    if "openid" not in scopes:
        return bearer_error("insufficient_scope", "the openid scope is required", "openid")
    user = await services_of(request).users.get(record.subject)
    if user is None or user.disabled:
        return bearer_error("invalid_token", "the access token is invalid, expired or revoked")
    claims = userinfo_claims(user, scopes)
    client = await services_of(request).clients.get(record.client_id)
    try:
        answer = _userinfo_answer(services_of(request), client, claims)
    except ValueError:
        # Registration checked the key, so only a JWKS edited since can get here: the claims
        # are not sent readable, and the client is told its registration must be fixed.
        return bearer_error(
            "invalid_request", "the client's registered encryption key cannot be used"
        )
    # OIDC Core §5.3: a browser app may call userinfo itself, from an origin its client registered.
    if bound_key(record) is not None:
        answer.headers.update(services_of(request).protocol.dpop.response_headers())
    return await allow_client_origin(request, record.client_id, answer)


def _userinfo_answer(services: Services, client: Client | None, claims: dict[str, Any]) -> Response:
    """JSON, or for a client that asked for encryption a signed, then encrypted JWT."""
    found = (
        recipient(
            client.jwks,
            client.userinfo_encrypted_response_alg,
            client.userinfo_encrypted_response_enc,
        )
        if client is not None
        else None
    )
    if client is None or found is None:
        return json_response(claims)
    token = userinfo_jwt(
        claims,
        issuer=services.settings.issuer,
        client_id=client.client_id,
        key=services.keyring.active,
        recipient=found,
    )
    return Response(token, media_type=USERINFO_JWT_TYPE, headers={"cache-control": "no-store"})


async def logout(request: Request) -> Response:
    services = services_of(request)
    try:
        params = Params(request.query_params.multi_items())
    except OAuthError as error:
        return _page("Invalid request", error.description, 400)
    keys = services.keyring.verification_keys()
    hint = read_id_token_hint(params.get("id_token_hint"), keys, services.settings.issuer)
    if params.get("id_token_hint") is not None and hint is None:
        return _page(
            "Invalid request", "The id_token_hint is not an ID token this server issued.", 400
        )
    if hint is not None and params.get("client_id") not in (None, hint.client_id):
        return _page("Invalid request", "client_id does not match the id_token_hint.", 400)
    requested = params.get("post_logout_redirect_uri")
    target = None
    if requested is not None:
        client = await services.clients.get(hint.client_id) if hint else None
        registered = client.post_logout_redirect_uris if client else ()
        target = logout_redirect(requested, registered, params.get("state"))
        if target is None:
            return _page(
                "Invalid request",
                "The address to return to after signing out is not registered for the application, "
                "or no valid id_token_hint was sent.",
                400,
            )
    session = await current_session(request)
    if hint is not None and (session is None or session.user_id == hint.subject):
        response: Response = RedirectResponse(target, 303) if target else _signed_out()
        await _end(services, session, response)
        return response
    return await _confirmation(request, services, session)


async def logout_confirmed(request: Request) -> Response:
    services = services_of(request)
    try:
        form = await read_form(request, services.settings.max_body_bytes)
    except OAuthError as error:
        return _page("Invalid request", error.description, error.status)
    if not csrf_ok(request, services, form.get("csrf_token")):
        return _page("Form expired", "This form is no longer valid. Please try again.", 403)
    response = _signed_out()
    await _end(services, await current_session(request), response)
    return response


async def _end(services: Services, session: Session | None, response: Response) -> None:
    """End the login session, revoke the refresh tokens issued under it, drop the cookie."""
    clear_cookie(response, services, session_cookie(services))
    if session is None:
        return
    now = services.clock.now()
    await services.sessions.end(session.session_hash, now)
    for family_id in await services.refresh.revoke_for_session(session.session_ref, now, "logout"):
        await services.tokens.revoke_by_family(family_id, now)


async def _confirmation(request: Request, services: Services, session: Session | None) -> Response:
    user = await services.users.get(session.user_id) if session else None
    cookie = request.cookies.get(csrf_cookie(services)) or random_token(32)
    response = page(
        "logout.html",
        title="Sign out",
        csrf_token=csrf_token(services, cookie),
        username=user.username if user else "",
    )
    set_cookie(response, services, csrf_cookie(services), cookie, 3600)
    return response


def _signed_out() -> Response:
    return page("signed_out.html", title="Signed out")


def _page(title: str, message: str, status: int) -> Response:
    return page("error.html", status, title=title, message=message)
