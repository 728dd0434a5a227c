"""``tokensmith lockouts clear``: lift a brute-force lock on an account, a client or an address."""

from __future__ import annotations

from typing import Annotated

import typer

from tokensmith.cli.context import record_change, run_with_services
from tokensmith.cli.output import CommandError, JsonFlag, emit
from tokensmith.runtime.limits import account_name
from tokensmith.runtime.services import Services

__all__ = ["app"]

app = typer.Typer(help="Brute-force lockouts.", no_args_is_help=True)


@app.command("clear")
def clear(
    account: Annotated[str | None, typer.Option("--account", help="A username.")] = None,
    client: Annotated[str | None, typer.Option("--client", help="A client id.")] = None,
    address: Annotated[str | None, typer.Option("--address", help="An IP address.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Clear failures and locks (shared through Redis: the CLI cannot reach a server's memory)."""
    names = {"account": account, "client": client, "address": address}
    if not any(names.values()):
        raise CommandError("name an --account, a --client or an --address to unlock")

    async def action(services: Services) -> None:
        if not await services.limits.ping():
            raise CommandError(
                "lockouts live in each server process without a reachable TOKENSMITH_REDIS_URL; "
                "use POST /admin/lockouts/clear on each node"
            )
        for kind, name in names.items():
            if name:
                key = account_name(name) if kind == "account" else name[:128]
                await services.limits.clear(f"{kind}:{key}")
        await record_change(
            services, "lockout.cleared", detail={k: v for k, v in names.items() if v}
        )

    run_with_services(action)
    cleared = {k: v for k, v in names.items() if v}
    emit({"cleared": cleared}, as_json, [f"cleared: {k} {v}" for k, v in cleared.items()])
