"""How a Typer app of the command line runs: one-line errors on stderr instead of tracebacks."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import typer

from tokensmith.adapters.logs import configure_logging
from tokensmith.cli.output import CommandError
from tokensmith.errors import OAuthError, StartupError

__all__ = ["run"]


def run(
    app: typer.Typer,
    *,
    database_errors: Callable[[], tuple[type[BaseException], ...]] = tuple,
    argv: Sequence[str] | None = None,
    prog_name: str | None = None,
) -> NoReturn:
    """Run ``app`` on ``argv`` (default ``sys.argv``) and exit: 1 for start-up and database
    errors, 2 for a command that cannot be carried out, 130 when interrupted
    (docs/architecture.md, Errors). ``database_errors`` is asked only once a command failed: a
    command that never touched the database has not imported the database layer."""
    # Until a command sets its own level: what reading the settings warns about is a JSON line.
    configure_logging("WARNING")
    try:
        args = None if argv is None else list(argv)
        result = app(args=args, prog_name=prog_name, standalone_mode=False)
    except (StartupError, CommandError) as exc:
        sys.stderr.write(f"tokensmith: {exc}\n")
        sys.exit(2 if isinstance(exc, CommandError) else 1)
    except OAuthError as exc:  # the request itself is wrong (a bad scope, an unknown key id)
        sys.stderr.write(f"tokensmith: {exc.description}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        sys.exit(_failure(exc, database_errors()))
    sys.exit(result if isinstance(result, int) else 0)


def _failure(exc: Exception, database_errors: tuple[type[BaseException], ...]) -> int:
    """The exit code for any other failure, once its line is written; the unforeseen is raised."""
    import click  # click's own errors, when Typer does not raise its copies; none is ours

    if isinstance(exc, click.ClickException):
        exc.show()
        return exc.exit_code
    if isinstance(exc, click.exceptions.Abort):
        return 130
    if isinstance(exc, database_errors):
        sys.stderr.write(f"tokensmith: the database became unreachable ({type(exc).__name__})\n")
        return 1
    # Typer may raise its own copy of click's usage errors; they know how to show themselves.
    show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
    if callable(show) and isinstance(code, int):
        show()
        return code
    raise exc
