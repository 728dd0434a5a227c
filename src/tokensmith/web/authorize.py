"""The authorization endpoint and the login and consent pages (RFC 6749 §4.1, OIDC Core §3.1.2).

GET /authorize validates the request (errors before the redirect URI is trusted stay on our own
page), then asks for what is missing: a login, then consent. POST /login and POST /consent carry the
sealed request forward, each protected by a CSRF token bound to an HttpOnly cookie. Each form's
interaction opens only at its own endpoint and in its own browser, and consent checks again that
the login the request demanded (``prompt=login``, ``max_age``) happened, in the current session.
A pushed request (``request_uri``, RFC 9126) is consumed at first sight, then sealed like any.
"""

from __future__ import annotations

from typing import assert_never

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tokensmith.accounts.sessions import Session
from tokensmith.core.concurrency import Busy
from tokensmith.core.secrets import random_token
from tokensmith.errors import (
    AccessDenied,
    ConsentRequired,
    LoginRequired,
    OAuthError,
    PageError,
    RedirectError,
    TooManyRequests,
)
from tokensmith.oauth.authorization import (
    AuthorizationRequest,
    error_redirect,
    issue_code,
    success_redirect,
    validate_authorization_request,
)
from tokensmith.oauth.clients import Client
from tokensmith.oauth.decision import IssueCode, Refuse, ShowConsent, ShowLogin, decide
from tokensmith.oauth.grants import Consent
from tokensmith.oauth.interaction import (
    INTERACTION_TTL,
    Interaction,
    Step,
    login_needed,
    open_interaction,
    seal_interaction,
)
from tokensmith.oauth.params import Params
from tokensmith.runtime.services import Services
from tokensmith.web.cookies import (
    csrf_cookie,
    csrf_ok,
    csrf_token,
    current_session,
    session_cookie,
    set_cookie,
)
from tokensmith.web.forms import read_form
from tokensmith.web.pages import form_action_for, page
from tokensmith.web.signin import (
    check_password,
    record_login,
    record_user_event,
    refusal_message,
    refusal_status,
    start_session,
)
from tokensmith.web.state import protocol_of, services_of

__all__ = ["authorize", "consent", "login"]

CSRF_COOKIE_TTL = INTERACTION_TTL * 6


# -- GET /authorize --------------------------------------------------------------------------


async def authorize(request: Request) -> Response:
    services = services_of(request)
    try:
        params = Params(request.query_params.multi_items())
        pushed = "request_uri" in params
        if pushed:  # RFC 9126 §4: the pushed parameters and client_id, nothing else
            params = await protocol_of(request).pushed_authorization.take(params)
        client, auth_request = await validate_authorization_request(
            params, services.clients, pushed=pushed, par_required=services.settings.require_par
        )
    except PageError as error:
        return _error_page(error.title, error.message, error.status)
    except RedirectError as refusal:
        return _back_to_client(error_redirect(refusal, services.settings.issuer))
    except OAuthError as error:
        return _error_page("Invalid request", error.description)
    interaction = Interaction(auth_request, services.clock.now() + INTERACTION_TTL)
    return await _proceed(request, services, client, interaction, await current_session(request))


async def _proceed(
    request: Request,
    services: Services,
    client: Client,
    interaction: Interaction,
    session: Session | None,
) -> Response:
    """Ask for whatever is still missing, or issue the code (``oauth/decision.py`` decides)."""
    auth_request = interaction.request
    consent = None
    if session is not None:
        consent = await services.consents.get(session.user_id, client.client_id)
    decision = decide(
        auth_request,
        session,
        consent,
        services.clock.now(),
        logged_in_here=session is not None and interaction.logged_in_here(session),
    )
    match decision:
        case Refuse(error=error, description=description):
            refusal = LoginRequired if error == "login_required" else ConsentRequired
            return _refuse(services, auth_request, refusal(description))
        case ShowLogin():
            return _login_page(request, services, client, interaction)
        case ShowConsent(session=user):
            return await _consent_page(request, services, client, interaction, user)
        case IssueCode(session=user):
            return await _finish(services, auth_request, user)
    assert_never(decision)


async def _finish(
    services: Services, auth_request: AuthorizationRequest, session: Session
) -> Response:
    code = await issue_code(
        services.codes,
        services.master.pepper,
        services.clock.now(),
        auth_request,
        session.user_id,
        session,
    )
    return _back_to_client(success_redirect(auth_request, services.settings.issuer, code))


# -- POST /login -----------------------------------------------------------------------------


async def login(request: Request) -> Response:
    services = services_of(request)
    loaded = await _load_form(request, services, "login")
    if isinstance(loaded, Response):
        return loaded
    form, interaction, client = loaded
    username = form.get("username") or ""
    try:
        user = await check_password(request, services, username, form.get("password") or "")
    except (TooManyRequests, Busy) as refusal:
        return _retry_page(request, services, client, interaction, username, refusal)
    record_login(services, user, username, client_id=client.client_id)
    if user is None:
        return _login_page(
            request,
            services,
            client,
            interaction,
            error="Incorrect username or password.",
            username=username,
            status=401,
        )
    session, value = await start_session(request, services, user)
    now = services.clock.now()
    response = await _proceed(
        request, services, client, interaction.logged_in(session, now), session
    )
    set_cookie(response, services, session_cookie(services), value, services.settings.session_ttl)
    return response


def _retry_page(
    request: Request,
    services: Services,
    client: Client,
    interaction: Interaction,
    username: str,
    refusal: TooManyRequests | Busy,
) -> Response:
    """The login page again, with the refusal's status and Retry-After."""
    page = _login_page(
        request,
        services,
        client,
        interaction,
        error=refusal_message(refusal),
        username=username,
        status=refusal_status(refusal),
    )
    page.headers["retry-after"] = str(refusal.retry_after)
    return page


# -- POST /consent ---------------------------------------------------------------------------


async def consent(request: Request) -> Response:
    services = services_of(request)
    loaded = await _load_form(request, services, "consent")
    if isinstance(loaded, Response):
        return loaded
    form, interaction, client = loaded
    session = await current_session(request)
    if session is None:
        return _login_page(request, services, client, interaction)
    if session.session_ref != interaction.session_ref:
        # Signed out, or signed in again (perhaps as someone else) since this form was shown.
        return _error_page(
            "Sign-in changed",
            "You signed in or out since this page was shown. Go back to the application and "
            "start again.",
            403,
        )
    if login_needed(interaction, session, services.clock.now()):
        return _login_page(request, services, client, interaction)
    auth_request = interaction.request
    allowed = form.get("decision") == "allow"
    record_user_event(
        services,
        "consent.granted" if allowed else "consent.denied",
        "success" if allowed else "info",
        session.user_id,
        {"scope": auth_request.scope},
        client_id=client.client_id,
    )
    if not allowed:
        return _refuse(services, auth_request, AccessDenied("the user denied the request"))
    existing = await services.consents.get(session.user_id, client.client_id)
    scopes = set(auth_request.scope.split()) | set(existing.scope.split() if existing else ())
    await services.consents.put(
        Consent(session.user_id, client.client_id, " ".join(sorted(scopes)), services.clock.now())
    )
    return await _finish(services, auth_request, session)


# -- shared ------------------------------------------------------------------------------------


async def _load_form(
    request: Request, services: Services, step: Step
) -> tuple[Params, Interaction, Client] | Response:
    try:
        form = await read_form(request, services.settings.max_body_bytes)
    except OAuthError as error:
        return _error_page("Invalid request", error.description, error.status)
    if not csrf_ok(request, services, form.get("csrf_token")):
        return _error_page(
            "Form expired",
            "This form is no longer valid. Go back to the application and start again.",
            403,
        )
    browser = request.cookies.get(csrf_cookie(services)) or ""  # present: csrf_ok passed
    sealed = form.get("interaction")
    interaction = open_interaction(services.master, sealed, services.clock.now(), step, browser)
    if interaction is None:
        return _error_page(
            "Sign-in expired",
            "This sign-in took too long. Go back to the application and start again.",
        )
    client = await services.clients.get(interaction.request.client_id)
    if client is None:
        return _error_page("Unknown application", "The application is no longer registered.")
    return form, interaction, client


def _login_page(
    request: Request,
    services: Services,
    client: Client,
    interaction: Interaction,
    *,
    error: str | None = None,
    username: str = "",
    status: int = 200,
) -> Response:
    return _form_page(
        "login.html",
        request,
        services,
        interaction.for_login(),
        "login",
        status,
        title="Sign in",
        client_name=client.name,
        error=error,
        username=username,
    )


async def _consent_page(
    request: Request, services: Services, client: Client, interaction: Interaction, session: Session
) -> Response:
    user = await services.users.get(session.user_id)
    return _form_page(
        "consent.html",
        request,
        services,
        interaction.for_consent(session),
        "consent",
        200,
        title="Allow access?",
        client_name=client.name,
        scopes=interaction.request.scope.split(),
        username=user.username if user else "",
    )


def _form_page(
    template: str,
    request: Request,
    services: Services,
    interaction: Interaction,
    step: Step,
    status: int,
    **context: object,
) -> Response:
    cookie = request.cookies.get(csrf_cookie(services)) or random_token(32)
    response = page(
        template,
        status,
        form_action=form_action_for(interaction.request.redirect_uri),
        csrf_token=csrf_token(services, cookie),
        interaction=seal_interaction(services.master, interaction, step, cookie),
        **context,
    )
    set_cookie(response, services, csrf_cookie(services), cookie, CSRF_COOKIE_TTL)
    return response


def _refuse(services: Services, auth_request: AuthorizationRequest, error: OAuthError) -> Response:
    """An OIDC error that goes back to the client (login_required, consent_required, ...)."""
    refusal = RedirectError(error, auth_request.redirect_uri, auth_request.state)
    return _back_to_client(error_redirect(refusal, services.settings.issuer))


def _back_to_client(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _error_page(title: str, message: str, status: int = 400) -> Response:
    return page("error.html", status, title=title, message=message)
