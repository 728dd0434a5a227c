"""What an authorization request needs next: a login, consent, a refusal, or its code.

OIDC Core §3.1.2.1 and §3.1.2.6, on plain data and the time as a number: ``decide`` reads no
request object, no clock and no store, so the HTTP layer (``web/authorize.py``) looks up the
session and the consent, asks here, and renders the answer.

1. A login is needed without a session, with ``prompt=login``, or when the session's login is
   ``max_age`` seconds old or older. Times are whole seconds, so a session that looks N seconds
   old may be up to N + 1 seconds old: the rule rounds toward "too old", and ``max_age=0``
   always demands a login. A login made in this very interaction, creating this session,
   satisfies both ``prompt=login`` and ``max_age``.
2. Then consent is needed with ``prompt=consent``, or when the user's consent to this client
   does not cover every requested scope, or always when the redirect URI does not prove who
   the client is: a loopback port or a private-use scheme is any app's on the device (RFC 8252
   §8.6: such a request "SHOULD be processed as if no previous request had been approved"),
   so a remembered consent would make a link that hands the built-in ``tokensmith-cli``'s
   code to whatever listens there one click away.
3. With ``prompt=none`` neither page is ever shown: the request goes back to the client with
   ``login_required`` or ``consent_required`` instead.
4. Otherwise the code is issued.

The prompts themselves were checked when the request was validated (``authorization.py``: none,
login, consent; ``none`` alone). ``select_account`` is refused there, since a browser holds one
session at a time, so no answer here is ``interaction_required``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tokensmith.accounts.sessions import Session
from tokensmith.oauth.authorization import AuthorizationRequest
from tokensmith.oauth.grants import Consent
from tokensmith.oauth.redirects import proves_client

__all__ = [
    "Decision",
    "IssueCode",
    "Refuse",
    "ShowConsent",
    "ShowLogin",
    "consent_covers",
    "decide",
    "reauthentication_needed",
]


@dataclass(frozen=True, slots=True)
class Refuse:
    """Back to the client's redirect URI with this OIDC error: ``prompt=none`` forbade a page."""

    error: Literal["login_required", "consent_required"]
    description: str


@dataclass(frozen=True, slots=True)
class ShowLogin:
    """Show the login page."""


@dataclass(frozen=True, slots=True)
class ShowConsent:
    """Ask ``session``'s user to consent to the requested scopes."""

    session: Session


@dataclass(frozen=True, slots=True)
class IssueCode:
    """Issue the authorization code for ``session``."""

    session: Session


Decision = Refuse | ShowLogin | ShowConsent | IssueCode


def decide(
    request: AuthorizationRequest,
    session: Session | None,
    consent: Consent | None,
    now: int,
    *,
    logged_in_here: bool = False,
) -> Decision:
    """The next step for ``request``, given the browser's live ``session`` (or None), the
    user's stored ``consent`` to the client (or None), and whether ``session`` was created by a
    login in this interaction (``logged_in_here``)."""
    silent = "none" in request.prompts
    if session is None or reauthentication_needed(
        request, session.auth_time, now, logged_in_here=logged_in_here
    ):
        return Refuse("login_required", "the user must log in") if silent else ShowLogin()
    if not proves_client(request.redirect_uri):
        consent = None  # nothing remembered counts for a client that cannot prove itself
    if "consent" in request.prompts or not consent_covers(consent, request, session):
        if silent:
            return Refuse("consent_required", "the user must consent")
        return ShowConsent(session)
    return IssueCode(session)


def reauthentication_needed(
    request: AuthorizationRequest, auth_time: int, now: int, *, logged_in_here: bool = False
) -> bool:
    """Whether a session whose login was at ``auth_time`` is not enough for ``request``: with
    ``prompt=login``, or at ``max_age`` or older, unless its login happened in this interaction.
    A login stamped later than ``now`` (another node's clock) counts as made now."""
    if logged_in_here:
        return False
    if "login" in request.prompts:
        return True
    return request.max_age is not None and max(0, now - auth_time) >= request.max_age


def consent_covers(
    consent: Consent | None, request: AuthorizationRequest, session: Session
) -> bool:
    """Whether ``consent`` is this user's, to this client, and covers every requested scope."""
    granted: set[str] = set()
    if (
        consent is not None
        and consent.user_id == session.user_id
        and consent.client_id == request.client_id
    ):
        granted = set(consent.scope.split())
    return set(request.scope.split()) <= granted
