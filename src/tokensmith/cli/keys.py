"""``tokensmith keys``: the signing keys and their rotation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from tokensmith.cli.context import record_change, run_with_services
from tokensmith.cli.output import CommandError, JsonFlag, emit, table, when

if TYPE_CHECKING:
    from tokensmith.jose.keyring import KeyRecord
    from tokensmith.runtime.services import Services

__all__ = ["app"]

app = typer.Typer(help="List and rotate signing keys.", no_args_is_help=True)


def describe(record: KeyRecord) -> dict[str, Any]:
    return {
        "kid": record.kid,
        "alg": record.alg,
        "state": record.state,
        "created_at": record.created_at,
        "activated_at": record.activated_at,
        "publish_until": record.publish_until,
    }


def _table(records: list[KeyRecord]) -> list[str]:
    return table(
        ("KID", "ALG", "STATE", "CREATED", "PUBLISHED UNTIL"),
        [
            (r.kid, r.alg, r.state, when(r.created_at), when(r.publish_until) or "-")
            for r in records
        ],
    )


@app.command("list")
def list_(as_json: JsonFlag = False) -> None:
    """The keys published in the JWKS: active, next and retiring."""

    async def action(services: Services) -> list[KeyRecord]:
        return services.keyring.published()

    records = run_with_services(action)
    emit({"keys": [describe(r) for r in records]}, as_json, _table(records))


@app.command("rotate")
def rotate(
    force: Annotated[
        bool, typer.Option("--force", help="Rotate even if the next key is newly published.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Make the next key active; the old key stays published until its tokens have expired."""

    async def action(services: Services) -> tuple[KeyRecord, list[KeyRecord]]:
        from tokensmith.jose.keyring import RotationRefused

        try:
            active = await services.keyring.rotate(force=force)
            await record_change(services, "signing_key.rotated", detail={"active": active.kid})
        except RotationRefused as exc:
            raise CommandError(str(exc)) from None
        return active, services.keyring.published()

    active, records = run_with_services(action, create_keys=True)
    emit(
        {"active": describe(active), "keys": [describe(r) for r in records]},
        as_json,
        [f"active key is now {active.kid}", *_table(records)],
    )
