"""``tokensmith audit``: read the audit trail, newest first, as a table or JSON."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tokensmith.cli.context import run_with_services
from tokensmith.cli.output import JsonFlag, duration_option, emit, table, when

if TYPE_CHECKING:
    from tokensmith.audit.events import AuditEvent
    from tokensmith.runtime.services import Services

__all__ = ["audit"]


def describe(event: AuditEvent) -> dict[str, Any]:
    return dataclasses.asdict(event)


def _detail(event: AuditEvent, width: int = 100) -> str:
    text = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in event.detail.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def audit(
    since: Annotated[
        str | None, typer.Option("--since", help="Only events this recent, e.g. 1h or 7d.")
    ] = None,
    client: Annotated[str | None, typer.Option("--client", help="Only this client id.")] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Only this subject (user id or key owner).")
    ] = None,
    event: Annotated[
        str | None, typer.Option("--event", help="Only this event, e.g. login.failure.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Show audit events, newest first."""
    window = duration_option("--since", since)

    async def action(services: Services) -> list[AuditEvent]:
        from tokensmith.audit.events import AuditQuery

        await services.trail.flush()
        start = services.clock.now() - window if window is not None else None
        query = AuditQuery(since=start, client_id=client, subject=subject, event=event, limit=limit)
        return await services.audit.query(query)

    events = run_with_services(action)
    rows = [
        (
            when(e.at),
            e.event,
            e.outcome,
            e.actor,
            e.client_id,
            e.subject,
            e.source_ip,
            _detail(e),
        )
        for e in events
    ]
    headers = ("TIME", "EVENT", "OUTCOME", "ACTOR", "CLIENT", "SUBJECT", "SOURCE", "DETAIL")
    lines = table(headers, rows) if events else ["no audit events match"]
    emit({"events": [describe(e) for e in events]}, as_json, lines)
