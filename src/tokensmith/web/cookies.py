"""The browser side of a login: the session and CSRF cookies, and the session they refer to.

Cookies are HttpOnly and SameSite=Lax; under an https issuer they are Secure and carry the
``__Host-`` prefix (no Domain, Path=/). Only a development server on plain-http localhost drops
Secure (SECURITY.md case 36).
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.accounts.sessions import Session
from tokensmith.core.secrets import b64url, constant_time_equals, keyed_hash
from tokensmith.runtime.services import Services
from tokensmith.web.state import services_of

__all__ = [
    "csrf_cookie",
    "csrf_ok",
    "csrf_token",
    "current_session",
    "session_cookie",
    "set_cookie",
]


async def current_session(request: Request) -> Session | None:
    services = services_of(request)
    value = request.cookies.get(session_cookie(services))
    if not value or len(value) > 128:
        return None
    session = await services.sessions.get(keyed_hash(services.master.pepper, value))
    return session if session is not None and session.live(services.clock.now()) else None


def csrf_token(services: Services, cookie: str) -> str:
    mac = hmac.new(services.master.pepper, b"csrf:" + cookie.encode(), hashlib.sha256).digest()
    return b64url(mac)


def csrf_ok(request: Request, services: Services, presented: str | None) -> bool:
    cookie = request.cookies.get(csrf_cookie(services))
    if not cookie or not presented or len(cookie) > 128:
        return False
    return constant_time_equals(csrf_token(services, cookie), presented)


def _secure(services: Services) -> bool:
    # Only a development server on plain-http localhost may drop the Secure flag.
    return services.settings.issuer.startswith("https://")


def session_cookie(services: Services) -> str:
    return "__Host-ts_session" if _secure(services) else "ts_session"


def csrf_cookie(services: Services) -> str:
    return "__Host-ts_csrf" if _secure(services) else "ts_csrf"


def set_cookie(response: Response, services: Services, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=_secure(services),
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, services: Services, name: str) -> None:
    response.delete_cookie(name, path="/", secure=_secure(services), httponly=True, samesite="lax")
