"""Signing a person in with a password, for every page that asks for one (the code flow's login
page, the device page): the lockouts around the hash, the answer when they refuse, a new session
id at every login, and the audit events of what the person does on those pages."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from tokensmith.accounts.sessions import Session
from tokensmith.accounts.users import User, authenticate_user
from tokensmith.audit.events import AuditEvent, Outcome
from tokensmith.core.concurrency import Busy
from tokensmith.core.secrets import keyed_hash, random_token
from tokensmith.errors import TooManyRequests
from tokensmith.runtime.services import Services
from tokensmith.web.cookies import session_cookie
from tokensmith.web.throttle import account_name, attempt, peer, succeeded

__all__ = [
    "check_password",
    "record_login",
    "record_user_event",
    "refusal_message",
    "refusal_status",
    "start_session",
]


async def check_password(
    request: Request, services: Services, username: str, password: str
) -> User | None:
    """The user, if the password is right, behind the lockouts of the name typed and of the
    address: the attempt is counted before the hash runs (SECURITY 57), a success refunds it.
    Raises TooManyRequests when locked, Busy when hashing is saturated."""
    account = account_name(username)
    async with attempt(request, account=account, address=peer(request)) as tried:
        user = await authenticate_user(services.users, username, password, services.password_slots)
        if user is None:
            tried.failed()
    if user is not None:
        await succeeded(request, account=account)
    return user


async def start_session(request: Request, services: Services, user: User) -> tuple[Session, str]:
    """A new login session and its cookie value. A new session id at every login: an id
    planted before login is worth nothing after it; the browser's previous session ends."""
    previous = request.cookies.get(session_cookie(services))
    now = services.clock.now()
    if previous:
        await services.sessions.end(keyed_hash(services.master.pepper, previous), now)
    value = random_token(32)
    session = Session(
        keyed_hash(services.master.pepper, value),
        user.user_id,
        now,
        "pwd",
        now,
        now + services.settings.session_ttl,
    )
    await services.sessions.add(session)
    return session, value


def refusal_message(refusal: TooManyRequests | Busy) -> str:
    """What the form says when ``check_password`` refused to try. The same answer for every
    name, existing or not: a lock reveals nothing."""
    if isinstance(refusal, TooManyRequests):
        return f"Too many failed sign-in attempts. Try again in {refusal.retry_after} seconds."
    return "Too many people are signing in right now. Try again in a moment."


def refusal_status(refusal: TooManyRequests | Busy) -> int:
    """429 for a lock, 503 while hashing is saturated (either with Retry-After)."""
    return 429 if isinstance(refusal, TooManyRequests) else 503


def record_login(
    services: Services,
    user: User | None,
    username: str,
    *,
    client_id: str | None = None,
    page: str | None = None,
) -> None:
    """``login.success`` or ``login.failure``. The attempted name goes on record for a failure
    (whose account is under attack), capped: people type passwords into the username box."""
    detail: dict[str, Any] = {"page": page} if page else {}
    if user is None:
        detail["username"] = username[:64]
    record_user_event(
        services,
        "login.success" if user else "login.failure",
        "success" if user else "denied",
        user.user_id if user else None,
        detail,
        client_id=client_id,
    )


def record_user_event(
    services: Services,
    event: str,
    outcome: Outcome,
    subject: str | None,
    detail: dict[str, Any],
    *,
    client_id: str | None = None,
) -> None:
    services.trail.record(
        AuditEvent(
            at=services.clock.now(),
            event=event,
            outcome=outcome,
            actor=f"user:{subject}" if subject else None,
            client_id=client_id,
            subject=subject,
            detail=detail,
        )
    )
