"""Brute-force lockouts and per-address limits at the endpoints that check a secret.

Names are ``account:<username>``, ``client:<client_id>`` and ``address:<ip>``. A lock is checked
before the secret is (so a locked account costs no password hash), and set by failures: the
account or client named, and the address they came from. An account is locked by the name typed,
whether or not it exists, so a lock never tells whether an account exists.
"""

from __future__ import annotations

from starlette.requests import Request

from tokensmith.errors import TooManyRequests
from tokensmith.oauth.clients import Client
from tokensmith.runtime.limits import LockoutPolicy, account_name
from tokensmith.web.metrics import LOCKOUTS, RATE_LIMITED
from tokensmith.web.state import services_of

__all__ = ["account_name", "admit", "blocked", "check_blocked", "failed", "peer", "succeeded"]

_WINDOW = 900.0


def peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _policy(request: Request, kind: str) -> LockoutPolicy:
    settings = services_of(request).settings
    threshold = {
        "account": settings.lockout_account_failures,
        "client": settings.lockout_client_failures,
        "address": settings.lockout_address_failures,
    }[kind]
    return LockoutPolicy(
        threshold, _WINDOW, float(settings.lockout_first), float(settings.lockout_longest)
    )


async def blocked(request: Request, **names: str | None) -> int | None:
    """Seconds to wait if any named account, client or address is locked (or the address is
    over its request rate); None when the request may go on to check its secret."""
    services = services_of(request)
    waits = []
    for kind, name in names.items():
        if name:
            wait = await services.limits.locked(f"{kind}:{name}")
            if wait is not None:
                RATE_LIMITED.labels(kind).inc()
                waits.append(wait)
    per_address = services.settings.rate_limit_per_address
    address = names.get("address")
    if per_address and address and not waits:
        wait = await services.limits.take(f"rate:address:{address}", per_address, 60.0)
        if wait is not None:
            RATE_LIMITED.labels("address").inc()
            waits.append(wait)
    return max(waits) if waits else None


async def check_blocked(request: Request, **names: str | None) -> None:
    """Raise TooManyRequests (429 + Retry-After) if ``blocked`` says to wait."""
    wait = await blocked(request, **names)
    if wait is not None:
        raise TooManyRequests(wait)


async def admit(request: Request, client: Client) -> None:
    """An authenticated client within its own request rate, if it has one."""
    if client.rate_limit is None:
        return
    limits = services_of(request).limits
    wait = await limits.take(f"rate:client:{client.client_id}", client.rate_limit, 60.0)
    if wait is not None:
        RATE_LIMITED.labels("client").inc()
        raise TooManyRequests(wait, "this client's request rate limit is exceeded")


async def failed(request: Request, **names: str | None) -> None:
    services = services_of(request)
    for kind, name in names.items():
        if name and await services.limits.fail(f"{kind}:{name}", _policy(request, kind)):
            LOCKOUTS.labels(kind).inc()


async def succeeded(request: Request, **names: str | None) -> None:
    services = services_of(request)
    for kind, name in names.items():
        if name:
            await services.limits.clear(f"{kind}:{name}")
