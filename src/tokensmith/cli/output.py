"""Printing for people or, with ``--json``, one JSON object for programs."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer

from tokensmith.core.durations import parse_duration
from tokensmith.errors import TokensmithError

__all__ = ["CommandError", "JsonFlag", "duration_option", "emit", "table", "when"]

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


class CommandError(TokensmithError):
    """A command cannot do what was asked; the message is one line for a person."""


def emit(payload: dict[str, Any], as_json: bool, lines: Iterable[str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, sort_keys=True) + "\n")
    else:
        for line in lines:
            typer.echo(line)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def duration_option(option: str, value: str | None) -> int | None:
    """Seconds from an option such as ``--grace 1h``; None when it was not given."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise CommandError(f"{option}: {exc}") from None


def when(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(timestamp))
