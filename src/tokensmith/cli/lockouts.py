"""``tokensmith lockouts clear``: lift a brute-force lock on an account, a client or an address."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from tokensmith.cli.context import record_change, run_with_services
from tokensmith.cli.output import CommandError, JsonFlag, emit

if TYPE_CHECKING:
    from tokensmith.runtime.services import Services

__all__ = ["app"]

app = typer.Typer(help="Brute-force lockouts.", no_args_is_help=True)


@app.command("clear")
def clear(
    account: Annotated[
        str | None, typer.Option("--account", help="A username (its /device code-entry lock too).")
    ] = None,
    client: Annotated[str | None, typer.Option("--client", help="A client id.")] = None,
    address: Annotated[
        str | None,
        typer.Option("--address", help="An IP address (its /device code-entry lock too)."),
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="An API key id (a spike hold).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Clear failures, locks and anomaly holds (shared through Redis: the CLI cannot reach a
    server's memory)."""
    names = {"account": account, "client": client, "address": address, "key": key}
    if not any(names.values()):
        raise CommandError("name an --account, a --client, an --address or a --key to unlock")

    async def action(services: Services) -> None:
        if not await services.limits.ping():
            raise CommandError(
                "lockouts live in each server process without a reachable TOKENSMITH_REDIS_URL; "
                "use POST /admin/lockouts/clear on each node"
            )
        await record_change(services, "lockout.cleared", detail=await services.limits.unlock(names))

    run_with_services(action)
    cleared = {k: v for k, v in names.items() if v}
    emit({"cleared": cleared}, as_json, [f"cleared: {k} {v}" for k, v in cleared.items()])
