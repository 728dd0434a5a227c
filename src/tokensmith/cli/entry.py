"""The ``tokensmith`` console script, which ``pip install tokensmith`` installs with the guard.

The base install is the guard library alone; the commands need an extra (pyproject.toml). When
one of its packages is missing, the script says in one line which extra to install instead of
printing an ImportError's traceback. ``tokensmith gateway`` and ``tokensmith bff`` run with the
``gateway`` extra alone (the BFF's Redis store also needs ``redis``, which ``bff`` adds), and
``tokensmith login|token|logout|whoami`` with the ``client`` extra alone: the other commands
import the server (SQLAlchemy, Redis, Argon2, ...) when they run; these need none of it.
"""

from __future__ import annotations

import sys
from typing import NoReturn

__all__ = ["main"]


# The commands that run on a light install (their extra): the rest import the server.
_LIGHT = {"gateway": "gateway", "bff": "bff"}
# cli/signin.py: a person's session, on the client kit.
CLIENT_COMMANDS = frozenset({"login", "token", "logout", "whoami"})


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        from tokensmith.cli.main import main as full
    except ModuleNotFoundError as exc:
        missing = _outside_package(exc)
        if command in _LIGHT:
            _alone(command)
        if command in CLIENT_COMMANDS:
            _client_alone()
        _install_hint(missing, "server")
    try:
        full()
    except ModuleNotFoundError as exc:  # a command imports the server's packages as it runs
        _install_hint(_outside_package(exc), _extra_of(command))


def _extra_of(command: str) -> str:
    return "client" if command in CLIENT_COMMANDS else _LIGHT.get(command, "server")


def _client_alone() -> NoReturn:
    """The session commands with the client extra only (the same commands and errors)."""
    try:
        import typer

        from tokensmith.cli import signin
        from tokensmith.cli.runner import run
    except ModuleNotFoundError as exc:
        _install_hint(_outside_package(exc), "client")
    app = typer.Typer(
        name="tokensmith",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    signin.register(app)
    run(app)


def _alone(command: str) -> NoReturn:
    """``tokensmith gateway`` or ``tokensmith bff`` with the gateway's packages only (the same
    command, options and one-line errors as in the full command line)."""
    try:
        import typer

        from tokensmith.cli.bff import bff
        from tokensmith.cli.gateway import gateway
        from tokensmith.cli.runner import run
    except ModuleNotFoundError as exc:
        _install_hint(_outside_package(exc), _LIGHT[command])
    app = typer.Typer(
        name="tokensmith",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.command("gateway")(gateway)
    app.command("bff")(bff)

    @app.callback()
    def commands() -> None:
        """Tokensmith's gateway and BFF (`pip install 'tokensmith[server]'` for the others)."""

    run(app)


def _outside_package(exc: ModuleNotFoundError) -> str:
    """The missing module's name; an ImportError of Tokensmith's own modules is a bug: raised."""
    name = exc.name or ""
    if not name or name.partition(".")[0] == "tokensmith":
        raise exc
    return name


def _install_hint(missing: str, extra: str) -> NoReturn:
    # The name is Python's own (an import name such as 'sqlalchemy'), printable by construction.
    sys.stderr.write(
        f"tokensmith: this command needs packages that are not installed (no module named "
        f"{missing!r}); install them with: pip install 'tokensmith[{extra}]'\n"
    )
    sys.exit(1)
