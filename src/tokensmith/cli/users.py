"""``tokensmith users``: people who log in."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from tokensmith.cli.context import record_change, run_with_services
from tokensmith.cli.output import CommandError, JsonFlag, emit, table, when

if TYPE_CHECKING:
    from tokensmith.accounts.users import User
    from tokensmith.runtime.services import Services

__all__ = ["app"]

app = typer.Typer(help="Create and list users.", no_args_is_help=True)


@app.command("create")
def create(
    username: Annotated[str, typer.Option("--username")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    email: Annotated[str | None, typer.Option("--email")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a user. The password comes from standard input, never from the command line."""
    from tokensmith.accounts.users import User, hash_password, new_user_id, validate_username

    if not password_stdin:
        raise CommandError("pass --password-stdin and send the password on standard input")
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        validate_username(username)
        password_hash = hash_password(password)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if email is not None and (
        "@" not in email or len(email) > 320 or any(c in email for c in " \r\n")
    ):
        raise CommandError("--email is not an e-mail address")

    async def action(services: Services) -> User:
        if await services.users.get_by_username(username) is not None:
            raise CommandError(f"a user named {username!r} already exists")
        now = services.clock.now()
        user = User(new_user_id(), username, email, password_hash, now, now)
        await services.users.add(user)
        await record_change(
            services, "user.created", subject=user.user_id, detail={"username": user.username}
        )
        return user

    user = run_with_services(action)
    emit(
        {"user_id": user.user_id, "username": user.username, "email": user.email},
        as_json,
        [f"created user {user.username} ({user.user_id})"],
    )


@app.command("list")
def list_(as_json: JsonFlag = False) -> None:
    """List users."""

    async def action(services: Services) -> list[User]:
        return await services.users.list()

    users = run_with_services(action)
    emit(
        {
            "users": [
                {"user_id": u.user_id, "username": u.username, "email": u.email} for u in users
            ]
        },
        as_json,
        table(
            ("USER ID", "USERNAME", "EMAIL", "CREATED"),
            [(u.user_id, u.username, u.email, when(u.created_at)) for u in users],
        ),
    )
