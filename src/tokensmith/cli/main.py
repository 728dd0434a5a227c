"""The ``tokensmith`` command: every subcommand (``cli/entry.py`` starts it; ``cli/runner.py``
turns its errors into one line).

Every call of the command line pays for its imports, so the package imports at module level
only what registering the commands needs (Typer, the options' types); each command imports the
server's modules it uses when it runs. ``--help``, ``version`` and ``master-key generate`` load
neither the database layer, nor the web framework, nor Argon2.
"""

from __future__ import annotations

from collections.abc import Sequence

import typer

from tokensmith import __version__
from tokensmith.cli import api_keys, clients, keys, lockouts, signin, users
from tokensmith.cli.audit import audit
from tokensmith.cli.bff import bff
from tokensmith.cli.gateway import gateway
from tokensmith.cli.output import JsonFlag, emit
from tokensmith.cli.runner import run
from tokensmith.cli.serve import migrate, serve

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
app.command("bff")(bff)
app.add_typer(clients.app, name="clients")
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(api_keys.app, name="api-keys")
app.command("audit")(audit)
app.add_typer(lockouts.app, name="lockouts")
signin.register(app)  # login, token, logout, whoami: a person's session (the client kit)

master_key_app = typer.Typer(
    help="The master key that seals secrets at rest.", no_args_is_help=True
)
app.add_typer(master_key_app, name="master-key")


@master_key_app.command("generate")
def generate(as_json: JsonFlag = False) -> None:
    """Print a new random master key for TOKENSMITH_MASTER_KEY (it is not stored anywhere)."""
    from tokensmith.core.sealing import generate_master_key

    key = generate_master_key()
    emit({"master_key": key}, as_json, [key])


@app.command("version")
def version(as_json: JsonFlag = False) -> None:
    """Print the version."""
    emit({"version": __version__}, as_json, [__version__])


def main(argv: Sequence[str] | None = None, prog_name: str | None = None) -> None:
    """Run one command, ``argv`` (default: the process's arguments), and exit with its code."""
    run(app, database_errors=_database_errors, argv=argv, prog_name=prog_name)


def _database_errors() -> tuple[type[BaseException], ...]:
    try:
        from tokensmith.persistence.database import DATABASE_ERRORS
    except ModuleNotFoundError:  # the gateway's install: no command could reach a database
        return ()
    return DATABASE_ERRORS
