"""Opening the services for one command and closing them after."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from tokensmith.adapters.logs import configure_logging

if TYPE_CHECKING:
    from tokensmith.runtime.services import Services
    from tokensmith.settings import Settings

__all__ = ["cli_actor", "record_change", "run_with_services"]

T = TypeVar("T")


def run_with_services(
    action: Callable[[Services], Awaitable[T]], *, create_keys: bool = False
) -> T:
    from tokensmith.settings import load_settings

    settings = load_settings()
    configure_logging("WARNING")
    return asyncio.run(_run(settings, action, create_keys))


async def _run(
    settings: Settings, action: Callable[[Services], Awaitable[T]], create_keys: bool
) -> T:
    from tokensmith.runtime.services import open_services

    services = await open_services(
        settings,
        apply_migrations=settings.mode == "development",
        create_keys=create_keys,
    )
    try:
        return await action(services)
    finally:
        await services.close()


def cli_actor() -> str:
    """Who is acting, for the audit trail: the operating-system user running the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        return "cli"


async def record_change(
    services: Services,
    event: str,
    *,
    client_id: str | None = None,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """An administrative change made from the command line, stored before the command returns."""
    from tokensmith.audit.events import AuditEvent

    await services.trail.write(
        AuditEvent(
            at=services.clock.now(),
            event=event,
            outcome="success",
            actor=cli_actor(),
            client_id=client_id,
            subject=subject,
            detail=detail or {},
        )
    )
