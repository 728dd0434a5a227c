"""``tokensmith login``, ``token``, ``logout`` and ``whoami``: a person's session at an issuer,
kept by the client kit (``tokensmith.client``, docs/client.md), like ``gh auth login``.

These commands run on the ``client`` extra alone (``cli/entry.py``): this module imports Typer,
``cli/output.py`` and, as each command runs, the client kit (which ``--help`` does not pay for
either); none of the server. The issuer is ``--issuer``, else
``$TOKENSMITH_ISSUER``, else the one last signed into (a non-secret file in the client home).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tokensmith.cli.output import CommandError, JsonFlag, emit, when

if TYPE_CHECKING:
    from tokensmith.client import ServerMetadata, SessionStore

__all__ = ["DEFAULT_CLIENT_ID", "login_command", "logout", "register", "token", "whoami"]

DEFAULT_CLIENT_ID = "tokensmith-cli"
DEFAULT_SCOPE = "openid profile email"

IssuerOption = Annotated[
    str | None,
    typer.Option(
        "--issuer",
        envvar="TOKENSMITH_ISSUER",
        help="The issuer URL (default: $TOKENSMITH_ISSUER, else the one last signed into).",
        show_envvar=False,
    ),
]
ClientIdOption = Annotated[
    str | None,
    typer.Option("--client-id", help=f"The public client to sign in as ({DEFAULT_CLIENT_ID})."),
]


@contextmanager
def _one_line() -> Iterator[None]:
    """The kit's errors as the command line's one-line errors (cli/runner.py)."""
    from tokensmith.client import ClientError

    try:
        yield
    except ClientError as exc:
        raise CommandError(exc.message) from None


def _target(issuer: str | None, client_id: str | None) -> tuple[Path, str, str]:
    from tokensmith.client import client_home
    from tokensmith.client.home import read_preferences

    home = client_home()
    preferences = read_preferences(home)
    chosen = issuer or preferences.get("issuer")
    if not isinstance(chosen, str) or not chosen:
        raise CommandError("no issuer: pass --issuer URL (or set TOKENSMITH_ISSUER)")
    same = isinstance(preferences.get("issuer"), str) and chosen == preferences["issuer"]
    remembered = preferences.get("client_id") if same else None
    chosen_client = client_id or (remembered if isinstance(remembered, str) else None)
    return home, chosen.removesuffix("/"), chosen_client or DEFAULT_CLIENT_ID


def _quiet_store(home: Path) -> SessionStore:
    from tokensmith.client import open_store

    return open_store(home, warn=lambda line: None)


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def login_command(
    issuer: IssuerOption = None,
    client_id: ClientIdOption = None,
    scope: Annotated[str, typer.Option("--scope", help="The scope to ask for.")] = DEFAULT_SCOPE,
    device: Annotated[
        bool, typer.Option("--device", help="Sign in with a code on another device.")
    ] = False,
    no_dpop: Annotated[
        bool,
        typer.Option("--no-dpop", help="Plain bearer tokens, even where the issuer offers DPoP."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Sign in with the system browser (or with a code: --device, or where no browser opens)."""
    from tokensmith.client import device_login, discover, login, open_store
    from tokensmith.client.home import write_preferences

    with _one_line():
        home, chosen, chosen_client = _target(issuer, client_id)
        metadata = discover(chosen)
        store = open_store(home, warn=_stderr)
        dpop = False if no_dpop else None  # None: bound when the issuer offers DPoP
        if device:
            session = device_login(metadata, chosen_client, store, scope=scope, home=home,
                                   notify=_stderr, dpop=dpop)  # fmt: skip
        else:
            session = login(metadata, chosen_client, store, scope=scope, home=home,
                            notify=_stderr, dpop=dpop)  # fmt: skip
        with session:
            write_preferences(home, {"issuer": metadata.issuer, "client_id": chosen_client})
            stored = session.stored
    who = _who(stored.claims, stored.subject)
    emit(
        _describe(stored),
        as_json,
        [f"Signed in to {stored.issuer} as {who}.", f"Session kept in {store.location}."],
    )


def token(
    scope: Annotated[
        str | None, typer.Option("--scope", help="A narrower scope for this token.")
    ] = None,
    audience: Annotated[
        str | None,
        typer.Option("--audience", help="The API the token is for (RFC 8707 resource)."),
    ] = None,
    issuer: IssuerOption = None,
    client_id: ClientIdOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Print a fresh access token: curl -H "Authorization: Bearer $(tokensmith token)" ..."""
    from tokensmith.client import Session, discover

    with _one_line():
        home, chosen, chosen_client = _target(issuer, client_id)
        metadata = discover(chosen)
        store = _quiet_store(home)
        with Session.load(
            metadata, chosen_client, store, home=home, scope=scope, resource=audience
        ) as session:
            access = session.access_token()
    payload = {
        "access_token": access.value,
        "token_type": access.token_type,
        "expires_at": access.expires_at,
        "scope": access.scope,
    }
    if access.token_type == "DPoP" and not as_json:
        # A bound token is useless as Bearer; say so where it cannot end up in $(...).
        _stderr("tokensmith: a DPoP token: send it as 'Authorization: DPoP' with a proof")
    emit(payload, as_json, [access.value])


def logout(
    issuer: IssuerOption = None, client_id: ClientIdOption = None, as_json: JsonFlag = False
) -> None:
    """Revoke the session at the server and delete it here (here even if the server is down)."""
    from tokensmith.client import Session

    with _one_line():
        home, chosen, chosen_client = _target(issuer, client_id)
        store = _quiet_store(home)
        stored = store.load(chosen, chosen_client)
        if stored is None:
            raise CommandError(f"not signed in to {chosen} as {chosen_client}")
        metadata = _metadata_or_none(chosen)
        if metadata is None:
            store.delete(chosen, chosen_client)
            revoked = False
        else:
            with Session(metadata, stored, store, home=home) as session:
                revoked = session.logout()
    lines = [f"Signed out of {chosen}."]
    if not revoked:
        lines = [
            f"Signed out of {chosen} on this machine only: the server could not be reached to "
            "revoke the session, which ends when it expires."
        ]
    emit({"issuer": chosen, "client_id": chosen_client, "revoked": revoked}, as_json, lines)


def _metadata_or_none(issuer: str) -> ServerMetadata | None:
    from tokensmith.client import DiscoveryError, discover

    try:
        return discover(issuer)
    except DiscoveryError:
        return None


def whoami(
    issuer: IssuerOption = None, client_id: ClientIdOption = None, as_json: JsonFlag = False
) -> None:
    """Who is signed in, to which issuer, through which client, with what scope, until when."""
    with _one_line():
        home, chosen, chosen_client = _target(issuer, client_id)
        stored = _quiet_store(home).load(chosen, chosen_client)
    if stored is None:
        raise CommandError(f"not signed in to {chosen} as {chosen_client}")
    described = _describe(stored)
    lines = [
        f"Signed in as {_who(stored.claims, stored.subject)}",
        f"issuer:    {stored.issuer}",
        f"client:    {stored.client_id}",
        f"scope:     {stored.scope}",
        f"since:     {when(stored.signed_in_at)}",
        f"until:     {when(stored.expires_at) or 'the server did not say (refresh to find out)'}",
    ]
    emit(described, as_json, lines)


def _who(claims: Any, subject: str | None) -> str:
    name = claims.get("name") or claims.get("preferred_username")
    email = claims.get("email")
    shown = " ".join(str(part) for part in (name, f"<{email}>" if email else None) if part)
    return f"{shown} ({subject})" if shown else str(subject)


def _describe(stored: Any) -> dict[str, Any]:
    return {
        "issuer": stored.issuer,
        "client_id": stored.client_id,
        "subject": stored.subject,
        "name": stored.claims.get("name") or stored.claims.get("preferred_username"),
        "email": stored.claims.get("email"),
        "scope": stored.scope,
        "signed_in_at": stored.signed_in_at,
        "expires_at": stored.expires_at,
    }


def register(app: typer.Typer) -> None:
    """Add the four commands to ``app`` (the full command line, or the client's alone)."""
    app.command("login")(login_command)
    app.command("token")(token)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
