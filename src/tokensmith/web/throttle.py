"""The lockouts and limits (``runtime/throttle.py``) for the HTTP handlers that are not behind
the client pipeline: the sign-in form. ``peer`` is the one function every lockout and limit asks
for a request's address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request

from tokensmith.core.lockouts import account_name
from tokensmith.runtime.throttle import Attempt
from tokensmith.web.state import protocol_of

__all__ = ["Attempt", "account_name", "attempt", "peer", "succeeded"]


def peer(request: Request) -> str:
    """The address a request comes from, as the envelope's trusted-proxy rule decided it."""
    return request.client.host if request.client else "unknown"


@asynccontextmanager
async def attempt(request: Request, **names: str | None) -> AsyncIterator[Attempt]:
    """``Throttle.attempt``: reserve an attempt under every name, or raise TooManyRequests."""
    async with protocol_of(request).throttle.attempt(**names) as tried:
        yield tried


async def succeeded(request: Request, **names: str | None) -> None:
    """Forget the earlier failures of the names (a user who signed in)."""
    await protocol_of(request).throttle.succeeded(**names)
