"""How a Typer app of the command line runs: one-line errors on stderr instead of tracebacks."""

from __future__ import annotations

import sys
from typing import NoReturn

import click
import typer

from tokensmith.adapters.logs import configure_logging
from tokensmith.cli.output import CommandError
from tokensmith.errors import OAuthError, StartupError

__all__ = ["run"]


def run(app: typer.Typer, *, database_errors: tuple[type[BaseException], ...] = ()) -> NoReturn:
    """Run ``app`` on ``sys.argv`` and exit: 1 for start-up and database errors, 2 for a command
    that cannot be carried out, 130 when interrupted (docs/architecture.md, Errors)."""
    # Until a command sets its own level: what reading the settings warns about is a JSON line.
    configure_logging("WARNING")
    try:
        result = app(standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except (StartupError, CommandError) as exc:
        sys.stderr.write(f"tokensmith: {exc}\n")
        sys.exit(2 if isinstance(exc, CommandError) else 1)
    except OAuthError as exc:  # the request itself is wrong (a bad scope, an unknown key id)
        sys.stderr.write(f"tokensmith: {exc.description}\n")
        sys.exit(2)
    except database_errors as exc:
        sys.stderr.write(f"tokensmith: the database became unreachable ({type(exc).__name__})\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # Typer may raise its own copy of click's usage errors; they know how to show themselves.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
    sys.exit(result if isinstance(result, int) else 0)
