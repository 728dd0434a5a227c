"""Whether this node can serve: its database answers in time, and it holds an active signing key."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from tokensmith.persistence.database import DATABASE_ERRORS, ping
from tokensmith.runtime.services import Services

__all__ = ["Readiness", "check_readiness"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Readiness:
    database: bool  # answered within TOKENSMITH_READINESS_TIMEOUT
    signing_key: bool  # an active key is loaded

    @property
    def ready(self) -> bool:
        return self.database and self.signing_key


async def check_readiness(services: Services) -> Readiness:
    database = True
    try:
        await _ping_within(services, services.settings.readiness_timeout)
    except DATABASE_ERRORS as exc:
        log.warning("readiness: database unreachable", extra={"error": type(exc).__name__})
        database = False
    return Readiness(database=database, signing_key=services.keyring.has_active)


async def _ping_within(services: Services, seconds: float) -> None:
    """``ping`` answered within ``seconds``, else TimeoutError at ``seconds``: the ping is
    cancelled but not waited for, so that however long its connection takes to go (a graceful
    close, a pool's reset), readiness answers in time."""
    pinged = asyncio.ensure_future(ping(services.engine))
    done, _ = await asyncio.wait({pinged}, timeout=seconds)
    if not done:
        pinged.cancel()
        pinged.add_done_callback(_settled)
        raise TimeoutError(f"no answer within {seconds} s")
    pinged.result()


def _settled(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: asyncio would log it as never retrieved otherwise
