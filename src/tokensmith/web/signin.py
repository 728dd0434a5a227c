"""Signing a person in with a password, for every page that asks for one (the code flow's login
page, the device page): the lockouts around the hash, and a new session id at every login."""

from __future__ import annotations

from starlette.requests import Request

from tokensmith.accounts.sessions import Session
from tokensmith.accounts.users import User, authenticate_user
from tokensmith.core.secrets import keyed_hash, random_token
from tokensmith.runtime.services import Services
from tokensmith.web.cookies import session_cookie
from tokensmith.web.throttle import account_name, attempt, peer, succeeded

__all__ = ["check_password", "start_session"]


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
