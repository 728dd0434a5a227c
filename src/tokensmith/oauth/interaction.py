"""The validated authorization request, carried through the login and consent forms.

It travels sealed (AES-GCM under the master key) inside the form, so the person's browser holds it
without being able to read or alter it, and no table of half-finished logins is needed. It expires
after ``INTERACTION_TTL``.

The sealing context (authenticated, never sent) names the step the form is for and the browser it
was shown to (its CSRF cookie). So the login page's form does not open at the consent endpoint (or
the reverse), and a form copied into another browser does not open at all. A consent form also
names the login session it was shown to, and whether that session was created by a login within
this interaction: the proof that ``prompt=login`` or ``max_age`` was honoured (OIDC Core
§3.1.2.1), checked again when consent is posted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Literal

from tokensmith.accounts.sessions import Session
from tokensmith.core.sealing import MasterKey, SealError
from tokensmith.core.secrets import b64url, b64url_decode
from tokensmith.oauth.authorization import AuthorizationRequest
from tokensmith.oauth.decision import reauthentication_needed

__all__ = [
    "INTERACTION_TTL",
    "Interaction",
    "Step",
    "login_needed",
    "open_interaction",
    "seal_interaction",
]

INTERACTION_TTL = 600
_MAX_SEALED = 16384

Step = Literal["login", "consent"]


@dataclass(frozen=True, slots=True)
class Interaction:
    request: AuthorizationRequest
    expires_at: int
    session_ref: str | None = None  # the login session a consent form was shown to
    logged_in_at: int | None = None  # set when that session's login happened in this interaction

    def logged_in(self, session: Session, now: int) -> Interaction:
        """After a successful login in this interaction, creating ``session``."""
        return replace(self, session_ref=session.session_ref, logged_in_at=now)

    def logged_in_here(self, session: Session) -> bool:
        """Whether ``session`` was created by a login in this interaction."""
        return self.logged_in_at is not None and self.session_ref == session.session_ref

    def for_login(self) -> Interaction:
        """What the login form carries: the request only; a login is what it will add."""
        return replace(self, session_ref=None, logged_in_at=None)

    def for_consent(self, session: Session) -> Interaction:
        """What the consent form carries: bound to the session it is shown to."""
        if self.session_ref == session.session_ref:
            return self
        return replace(self, session_ref=session.session_ref, logged_in_at=None)


def login_needed(interaction: Interaction, session: Session, now: int) -> bool:
    """Whether ``session`` is not enough and the person must log in (again) now.

    OIDC Core §3.1.2.1: ``prompt=login`` and an exceeded ``max_age`` demand an active
    re-authentication; a login made in this very interaction, creating this session, satisfies
    both (``decision.reauthentication_needed`` has the rule and its rounding).
    """
    return reauthentication_needed(
        interaction.request,
        session.auth_time,
        now,
        logged_in_here=interaction.logged_in_here(session),
    )


def seal_interaction(master: MasterKey, interaction: Interaction, step: Step, browser: str) -> str:
    """Seal for one step, in one browser (``browser`` is its CSRF cookie value)."""
    payload = {
        "request": interaction.request.to_json(),
        "exp": interaction.expires_at,
        "session": interaction.session_ref,
        "login": interaction.logged_in_at,
    }
    return b64url(master.seal(json.dumps(payload).encode(), _context(step, browser)))


def open_interaction(
    master: MasterKey, sealed: str | None, now: int, step: Step, browser: str
) -> Interaction | None:
    """The interaction, or None if it is missing, altered, expired, for another step or browser."""
    if not sealed or len(sealed) > _MAX_SEALED:
        return None
    try:
        payload = json.loads(master.unseal(b64url_decode(sealed), _context(step, browser)))
        interaction = _from_payload(payload)
    except (SealError, ValueError, KeyError, TypeError):
        return None
    return interaction if interaction.expires_at > now else None


def _from_payload(payload: dict[str, object]) -> Interaction:
    session, login = payload["session"], payload["login"]
    if not isinstance(session, str | None) or not isinstance(login, int | None):
        raise TypeError("malformed interaction")
    request = payload["request"]
    if not isinstance(request, dict):
        raise TypeError("malformed interaction")
    expires = payload["exp"]
    if not isinstance(expires, int):
        raise TypeError("malformed interaction")
    return Interaction(AuthorizationRequest.from_json(request), expires, session, login)


def _context(step: Step, browser: str) -> str:
    # v2: v1 interactions (one context for both steps, no browser) no longer open.
    return f"interaction:v2:{step}:{hashlib.sha256(browser.encode()).hexdigest()}"
