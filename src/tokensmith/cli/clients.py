"""``tokensmith clients``: register, list, show, rotate secrets, delete."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tokensmith.cli.context import record_change, run_with_services
from tokensmith.cli.output import CommandError, JsonFlag, duration_option, emit, table, when
from tokensmith.core.durations import format_duration

if TYPE_CHECKING:
    from tokensmith.oauth.client_removal import ClientRemoval
    from tokensmith.oauth.clients import Client
    from tokensmith.runtime.services import Services

__all__ = ["app"]

app = typer.Typer(help="Register and manage OAuth clients.", no_args_is_help=True)


def describe(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "public": client.is_public,
        "token_endpoint_auth_method": client.auth_method,
        "grant_types": list(client.grant_types),
        "redirect_uris": list(client.redirect_uris),
        "scope": client.scope,
        "access_token_format": client.access_token_format,
        "access_token_ttl": client.access_token_ttl,
        "refresh_token_ttl": client.refresh_token_ttl,
        "allowed_resources": list(client.allowed_resources),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "cors_origins": list(client.cors_origins),
        "jwks": client.jwks,
        "refresh_grace": client.refresh_grace,
        "rate_limit": client.rate_limit,
        "may_vouch_client_ip": client.may_vouch_client_ip,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "created_at": client.created_at,
        "previous_secret_expires_at": client.previous_secret_expires_at,
    }


def _lines(client: Client) -> list[str]:
    return [
        f"client_id:     {client.client_id}",
        f"name:          {client.name}",
        f"type:          {'public' if client.is_public else 'confidential'} ({client.auth_method})",
        f"grant types:   {' '.join(client.grant_types)}",
        f"redirect URIs: {' '.join(client.redirect_uris) or '-'}",
        f"scope:         {client.scope or '-'}",
        f"DPoP required: {'yes' if client.dpop_bound_access_tokens else 'no'}",
        f"created:       {when(client.created_at)}",
    ]


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="A name people recognise.")],
    public: Annotated[bool, typer.Option("--public", help="A public client (no secret).")] = False,
    grant_type: Annotated[list[str] | None, typer.Option("--grant-type")] = None,
    redirect_uri: Annotated[list[str] | None, typer.Option("--redirect-uri")] = None,
    scope: Annotated[str, typer.Option("--scope", help='Allowed scopes, "a b".')] = "",
    auth_method: Annotated[
        str | None,
        typer.Option("--auth-method", help="client_secret_basic (default) or client_secret_post."),
    ] = None,
    token_format: Annotated[
        str, typer.Option("--token-format", help="Access tokens as jwt (default) or opaque.")
    ] = "jwt",
    access_token_ttl: Annotated[
        str | None, typer.Option("--access-token-ttl", help="e.g. 5m; capped by the server.")
    ] = None,
    refresh_token_ttl: Annotated[
        str | None, typer.Option("--refresh-token-ttl", help="e.g. 14d (default: the server's).")
    ] = None,
    resource: Annotated[
        list[str] | None, typer.Option("--resource", help="A resource server URI it may target.")
    ] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--post-logout-redirect-uri", help="Where logout may return to."),
    ] = None,
    jwks_file: Annotated[
        Path | None,
        typer.Option("--jwks-file", help="Public JWKS for private_key_jwt authentication."),
    ] = None,
    refresh_grace: Annotated[
        str,
        typer.Option("--refresh-grace", help="Retry window for a lost refresh response, e.g. 10s."),
    ] = "0s",
    rate_limit: Annotated[
        int | None,
        typer.Option("--rate-limit", help="Requests per minute at /token, /introspect, /revoke."),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="A browser origin allowed to call the token endpoint."),
    ] = None,
    may_vouch_client_ip: Annotated[
        bool,
        typer.Option(
            "--may-vouch-client-ip",
            help="May name its callers' addresses (client_ip) at /api-keys/verify: a gateway.",
        ),
    ] = False,
    dpop_bound_access_tokens: Annotated[
        bool,
        typer.Option(
            "--dpop-bound-access-tokens",
            help="Every token request must carry a DPoP proof (RFC 9449 §5.2).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Register a client; prints its client_id and, once only, its secret."""
    from tokensmith.core.secrets import keyed_hash
    from tokensmith.oauth.clients import NewClient, generate_client_id, generate_client_secret

    ttl = duration_option("--access-token-ttl", access_token_ttl)
    refresh_ttl = duration_option("--refresh-token-ttl", refresh_token_ttl)
    jwks = _read_jwks(jwks_file) if jwks_file is not None else None
    grace = duration_option("--refresh-grace", refresh_grace) or 0
    request = NewClient(
        name,
        public,
        tuple(grant_type or ()),
        tuple(redirect_uri or ()),
        scope,
        auth_method=auth_method,
        access_token_format=token_format,  # type: ignore[arg-type]  # validated below
        access_token_ttl=ttl,
        refresh_token_ttl=refresh_ttl,
        allowed_resources=tuple(resource or ()),
        post_logout_redirect_uris=tuple(post_logout_redirect_uri or ()),
        cors_origins=tuple(cors_origin or ()),
        jwks=jwks,
        refresh_grace=grace,
        rate_limit=rate_limit,
        may_vouch_client_ip=may_vouch_client_ip,
        dpop_bound_access_tokens=dpop_bound_access_tokens,
    )

    async def action(services: Services) -> tuple[Client, str | None]:
        secret = None if public or jwks is not None else generate_client_secret()
        secret_hash = keyed_hash(services.master.pepper, secret) if secret else None
        try:
            client = request.validated(
                generate_client_id(),
                secret_hash,
                services.clock.now(),
                offered=services.protocol.grants,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        await services.clients.add(client)
        await record_change(
            services, "client.created", client_id=client.client_id, detail={"name": client.name}
        )
        return client, secret

    client, secret = run_with_services(action)
    payload = describe(client)
    lines = _lines(client)
    if secret is not None:
        payload["client_secret"] = secret
        lines.append(f"client_secret: {secret}")
        lines.append("Store the secret now: it is shown once and cannot be recovered.")
    emit(payload, as_json, lines)


@app.command("list")
def list_(as_json: JsonFlag = False) -> None:
    """List registered clients."""

    async def action(services: Services) -> list[Client]:
        return await services.clients.list()

    clients = run_with_services(action)
    rows = [
        (c.client_id, c.name, "public" if c.is_public else "confidential", " ".join(c.grant_types))
        for c in clients
    ]
    emit(
        {"clients": [describe(c) for c in clients]},
        as_json,
        table(("CLIENT ID", "NAME", "TYPE", "GRANT TYPES"), rows),
    )


@app.command("show")
def show(client_id: str, as_json: JsonFlag = False) -> None:
    """Show one client."""
    client = run_with_services(lambda services: _get(services, client_id))
    emit(describe(client), as_json, _lines(client))


@app.command("rotate-secret")
def rotate_secret(
    client_id: str,
    grace: Annotated[
        str, typer.Option("--grace", help="How long the old secret keeps working, e.g. 1h.")
    ] = "0s",
    as_json: JsonFlag = False,
) -> None:
    """Issue a new secret; the old one keeps working for the grace period."""
    from tokensmith.core.secrets import keyed_hash
    from tokensmith.oauth.clients import generate_client_secret

    grace_seconds = duration_option("--grace", grace) or 0

    async def action(services: Services) -> tuple[str, int | None]:
        client = await _get(services, client_id)
        if client.is_public:
            raise CommandError(f"client {client_id} is public and has no secret")
        secret = generate_client_secret()
        now = services.clock.now()
        until = now + grace_seconds if grace_seconds else None
        await services.clients.replace_secret(
            client_id, keyed_hash(services.master.pepper, secret), until, now
        )
        await record_change(
            services, "client.secret_rotated", client_id=client_id, detail={"grace": grace_seconds}
        )
        return secret, until

    secret, until = run_with_services(action)
    old = f"until {when(until)} ({format_duration(grace_seconds)})" if until else "no longer"
    emit(
        {"client_id": client_id, "client_secret": secret, "previous_secret_expires_at": until},
        as_json,
        [f"client_secret: {secret}", f"The previous secret works {old}."],
    )


@app.command("update")
def update(
    client_id: str,
    may_vouch_client_ip: Annotated[
        bool | None,
        typer.Option(
            "--may-vouch-client-ip/--no-may-vouch-client-ip",
            help="Allow or forbid naming callers' addresses (client_ip) at /api-keys/verify.",
        ),
    ] = None,
    dpop_bound_access_tokens: Annotated[
        bool | None,
        typer.Option(
            "--dpop-bound-access-tokens/--no-dpop-bound-access-tokens",
            help="Require (or stop requiring) a DPoP proof on every token request.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a client's permissions."""
    if may_vouch_client_ip is None and dpop_bound_access_tokens is None:
        raise CommandError("name a change, such as --may-vouch-client-ip")
    allowed = may_vouch_client_ip

    async def action(services: Services) -> Client:
        client = await _get(services, client_id)
        if client.is_public and allowed:
            raise CommandError(f"client {client_id} is public and cannot vouch for client_ip")
        now = services.clock.now()
        detail: dict[str, bool] = {}
        if allowed is not None:
            await services.clients.set_may_vouch_client_ip(client_id, allowed, now)
            detail["may_vouch_client_ip"] = allowed
        if dpop_bound_access_tokens is not None:
            required = dpop_bound_access_tokens
            await services.clients.set_dpop_bound_access_tokens(client_id, required, now)
            detail["dpop_bound_access_tokens"] = required
        await record_change(services, "client.updated", client_id=client_id, detail=detail)
        return await _get(services, client_id)

    client = run_with_services(action)
    lines = _lines(client)
    if allowed is not None:
        lines.append(f"may vouch:     {allowed}")
    emit(describe(client), as_json, lines)


@app.command("delete")
def delete(client_id: str, as_json: JsonFlag = False) -> None:
    """Delete a client and revoke its tokens, refresh tokens and codes."""
    from tokensmith.oauth.client_removal import delete_client

    async def action(services: Services) -> ClientRemoval:
        removal = await delete_client(services, client_id, services.clock.now())
        if removal.deleted:
            await record_change(
                services, "client.deleted", client_id=client_id, detail=removal.detail()
            )
        return removal

    removal = run_with_services(action)
    if not removal.deleted:
        raise CommandError(f"no client {client_id}")
    emit(
        {"client_id": client_id, "deleted": True, **removal.detail()},
        as_json,
        [
            f"deleted client {client_id}",
            f"revoked {removal.families} refresh grants and {removal.tokens} stored access tokens",
        ],
    )


def _read_jwks(path: Path) -> dict[str, Any]:
    from tokensmith.oauth.client_assertion import parse_client_jwks

    try:
        return parse_client_jwks(path.read_text())
    except OSError as exc:
        raise CommandError(f"--jwks-file: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise CommandError(f"--jwks-file: {exc}") from None


async def _get(services: Services, client_id: str) -> Client:
    client = await services.clients.get(client_id)
    if client is None:
        raise CommandError(f"no client {client_id}")
    return client
