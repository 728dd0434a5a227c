"""Opening the services for one command and closing them after."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tokensmith.runtime.logs import configure_logging
from tokensmith.runtime.services import Services, open_services
from tokensmith.settings import Settings, load_settings

__all__ = ["run_with_services"]

T = TypeVar("T")


def run_with_services(
    action: Callable[[Services], Awaitable[T]], *, create_keys: bool = False
) -> T:
    settings = load_settings()
    configure_logging("WARNING")
    return asyncio.run(_run(settings, action, create_keys))


async def _run(
    settings: Settings, action: Callable[[Services], Awaitable[T]], create_keys: bool
) -> T:
    services = await open_services(
        settings,
        apply_migrations=settings.mode == "development",
        create_keys=create_keys,
    )
    try:
        return await action(services)
    finally:
        await services.close()
