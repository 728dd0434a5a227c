"""The ``tokensmith`` entry point: subcommands, and one-line errors instead of tracebacks."""

from __future__ import annotations

import sys

import click
import typer

from tokensmith import __version__
from tokensmith.adapters.logs import configure_logging
from tokensmith.cli import api_keys, clients, keys, lockouts, users
from tokensmith.cli.audit import audit
from tokensmith.cli.gateway import gateway
from tokensmith.cli.output import CommandError, JsonFlag, emit
from tokensmith.cli.serve import migrate, serve
from tokensmith.core.sealing import generate_master_key
from tokensmith.errors import OAuthError, StartupError
from tokensmith.persistence.database import DATABASE_ERRORS

__all__ = ["app", "main"]

app = typer.Typer(
    name="tokensmith",
    help="Tokensmith: issue, validate, rotate, revoke and watch every token and API key.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(serve)
app.command("migrate")(migrate)
app.command("gateway")(gateway)
app.add_typer(clients.app, name="clients")
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(api_keys.app, name="api-keys")
app.command("audit")(audit)
app.add_typer(lockouts.app, name="lockouts")

master_key_app = typer.Typer(
    help="The master key that seals secrets at rest.", no_args_is_help=True
)
app.add_typer(master_key_app, name="master-key")


@master_key_app.command("generate")
def generate(as_json: JsonFlag = False) -> None:
    """Print a new random master key for TOKENSMITH_MASTER_KEY (it is not stored anywhere)."""
    key = generate_master_key()
    emit({"master_key": key}, as_json, [key])


@app.command("version")
def version(as_json: JsonFlag = False) -> None:
    """Print the version."""
    emit({"version": __version__}, as_json, [__version__])


def main() -> None:
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
    except DATABASE_ERRORS as exc:
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
