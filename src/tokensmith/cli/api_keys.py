"""``tokensmith api-keys``: create, list, show, rotate and revoke API keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from tokensmith.cli.context import cli_actor, run_with_services
from tokensmith.cli.output import JsonFlag, duration_option, emit, table, when
from tokensmith.core.durations import format_duration

if TYPE_CHECKING:
    from tokensmith.apikeys.lifecycle import IssuedApiKey
    from tokensmith.apikeys.records import ApiKeyRecord
    from tokensmith.runtime.services import Services

__all__ = ["app"]

app = typer.Typer(help="Create and manage API keys.", no_args_is_help=True)


def describe(record: ApiKeyRecord, now: int) -> dict[str, Any]:
    from tokensmith.apikeys.lifecycle import describe

    return describe(record, now)


def _lines(record: ApiKeyRecord, now: int) -> list[str]:
    info = describe(record, now)
    lines = [
        f"key_id:     {record.key_id}",
        f"name:       {record.name}",
        f"owner:      {record.owner}",
        f"scope:      {record.scope}",
        f"status:     {info['status']}",
        f"created:    {when(record.created_at)}",
        f"expires:    {when(record.expires_at) or 'never'}",
        f"last used:  {when(record.last_used_at) or 'never'}",
    ]
    if record.allowed_cidrs:
        lines.append(f"allowed IP: {' '.join(record.allowed_cidrs)}")
    if record.audiences:
        lines.append(f"audience:   {' '.join(record.audiences)}")
    if record.rate_limit is not None:
        lines.append(f"rate limit: {record.rate_limit}/min")
    if record.replaced_by:
        lines.append(f"replaced by: {record.replaced_by}")
    return lines


def _emit_issued(issued: IssuedApiKey, now: int, as_json: bool, extra: list[str]) -> None:
    payload = {"key": issued.key, **describe(issued.record, now)}
    lines = [
        *_lines(issued.record, now),
        *extra,
        f"key:        {issued.key}",
        "Store the key now: it is shown once and cannot be recovered.",
    ]
    emit(payload, as_json, lines)


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="What the key is for.")],
    scope: Annotated[str, typer.Option("--scope", help='Scopes, "a b".')],
    owner: Annotated[
        str | None, typer.Option("--owner", help="Who answers for the key (default: you).")
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="e.g. 30d (default: never).")
    ] = None,
    allow_ip: Annotated[
        list[str] | None,
        typer.Option("--allow-ip", help="An address or range it may be used from (repeatable)."),
    ] = None,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", help="Requests per minute.")
    ] = None,
    audience: Annotated[
        list[str] | None,
        typer.Option("--audience", help="A resource URI it is bound to (repeatable; default any)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a key; prints it once."""
    from tokensmith.apikeys.lifecycle import NewApiKey

    actor = cli_actor()
    new = NewApiKey(
        name=name,
        owner=owner or actor,
        scope=scope,
        expires_in=duration_option("--expires-in", expires_in),
        allowed_cidrs=tuple(allow_ip or ()),
        rate_limit=rate_limit,
        audiences=tuple(audience or ()),
    )

    async def action(services: Services) -> tuple[IssuedApiKey, int]:
        return await services.key_manager.create(new, actor), services.clock.now()

    issued, now = run_with_services(action)
    _emit_issued(issued, now, as_json, [])


@app.command("list")
def list_(
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's keys.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List keys (never the keys themselves)."""

    async def action(services: Services) -> tuple[list[ApiKeyRecord], int]:
        return await services.key_manager.list_keys(owner), services.clock.now()

    records, now = run_with_services(action)
    described = [describe(r, now) for r in records]
    rows = [
        (
            d["prefix"],
            d["name"],
            d["owner"],
            d["scope"],
            d["status"],
            when(d["created_at"]),
            when(d["last_used_at"]) or "never",
            when(d["expires_at"]) or "never",
        )
        for d in described
    ]
    headers = ("PREFIX", "NAME", "OWNER", "SCOPE", "STATUS", "CREATED", "LAST USED", "EXPIRES")
    emit({"keys": described}, as_json, table(headers, rows))


@app.command("show")
def show(key_id: str, as_json: JsonFlag = False) -> None:
    """Show one key."""

    async def action(services: Services) -> tuple[ApiKeyRecord, int]:
        return await services.key_manager.get(key_id), services.clock.now()

    record, now = run_with_services(action)
    emit(describe(record, now), as_json, _lines(record, now))


@app.command("rotate")
def rotate(
    key_id: str,
    grace: Annotated[
        str, typer.Option("--grace", help="How long the old key keeps working, e.g. 1h.")
    ] = "0s",
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="The new key's lifetime (default: same).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a replacement key; the old one keeps working for the grace period, then dies."""
    grace_seconds = duration_option("--grace", grace) or 0
    lifetime = duration_option("--expires-in", expires_in)

    async def action(services: Services) -> tuple[IssuedApiKey, int]:
        issued = await services.key_manager.rotate(
            key_id, cli_actor(), grace=grace_seconds, expires_in=lifetime
        )
        return issued, services.clock.now()

    issued, now = run_with_services(action)
    old = f"for {format_duration(grace_seconds)}" if grace_seconds else "no longer"
    _emit_issued(issued, now, as_json, [f"The old key {key_id} works {old}."])


@app.command("revoke")
def revoke(key_id: str, as_json: JsonFlag = False) -> None:
    """Revoke a key now (every node refuses it within the cache bound, 1 s by default)."""

    async def action(services: Services) -> tuple[ApiKeyRecord, int]:
        return await services.key_manager.revoke(key_id, cli_actor()), services.clock.now()

    record, now = run_with_services(action)
    payload: dict[str, Any] = describe(record, now)
    emit(payload, as_json, [f"revoked: {record.key_id} ({record.name})"])
