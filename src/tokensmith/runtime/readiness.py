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
        async with asyncio.timeout(services.settings.readiness_timeout):
            await ping(services.engine)
    except DATABASE_ERRORS as exc:
        log.warning("readiness: database unreachable", extra={"error": type(exc).__name__})
        database = False
    return Readiness(database=database, signing_key=services.keyring.has_active)
