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
        "token_exchange": client.token_exchange,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
        "id_token_encrypted_response_alg": client.id_token_encrypted_response_alg,
        "id_token_encrypted_response_enc": client.id_token_encrypted_response_enc,
        "userinfo_encrypted_response_alg": client.userinfo_encrypted_response_alg,
        "userinfo_encrypted_response_enc": client.userinfo_encrypted_response_enc,
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
        *_exchange_lines(client),
        f"refresh grace: {_grace_line(client)}",
        f"DPoP required: {'yes' if client.dpop_bound_access_tokens else 'no'}",
        f"requires PAR:  {'yes' if client.require_pushed_authorization_requests else 'no'}",
        *_encryption_lines(client),
        f"created:       {when(client.created_at)}",
    ]


def _grace_line(client: Client) -> str:
    if client.refresh_grace is None:
        return "the server's (TOKENSMITH_REFRESH_GRACE)"
    return format_duration(client.refresh_grace) if client.refresh_grace else "off"


def _exchange_lines(client: Client) -> list[str]:
    from tokensmith.oauth.exchange_policy import TOKEN_EXCHANGE_GRANT, ExchangePolicy

    if TOKEN_EXCHANGE_GRANT not in client.grant_types:
        return []
    try:
        policy = ExchangePolicy.of(client.token_exchange)
    except ValueError:
        return ["token exchange: (policy not valid: every exchange is refused)"]
    actors = "any" if policy.actors is None else " ".join(policy.actors) or "-"
    return [
        f"exchange to:   {' '.join(policy.audiences) or '(the subject token audience)'}",
        f"exchanges for: {' '.join(policy.accept_audiences) or '(its own tokens only)'}",
        f"subjects:      {' '.join(policy.subject_types)}; actors: {actors}",
        f"impersonation: {policy.allow_impersonation}; txn tokens: {policy.txn_tokens}",
    ]


# The token exchange policy's flags (oauth/exchange_policy.py), on create and update alike.
RefreshGrace = Annotated[
    str | None,
    typer.Option(
        "--refresh-grace",
        help="How long a duplicate refresh gets the same successor, e.g. 10s; 0 turns it off;"
        " default: the server's TOKENSMITH_REFRESH_GRACE.",
    ),
]
ExchangeAudience = Annotated[
    list[str] | None,
    typer.Option("--exchange-audience", help="A target its token exchanges may name (repeat)."),
]
ExchangeAccept = Annotated[
    list[str] | None,
    typer.Option(
        "--exchange-accept-audience",
        help="Exchange tokens meant for this audience (its own API, say), not only its own.",
    ),
]
ExchangeSubjectType = Annotated[
    list[str] | None,
    typer.Option(
        "--exchange-subject-type", help="access_token (default), id_token or api_key (repeat)."
    ),
]
ExchangeActor = Annotated[
    list[str] | None,
    typer.Option("--exchange-actor", help="A subject allowed to act (default: any) (repeat)."),
]
ExchangeDelegationOnly = Annotated[
    bool, typer.Option("--exchange-delegation-only", help="Every exchange must name an actor.")
]
ExchangeTxnTokens = Annotated[
    bool,
    typer.Option("--exchange-txn-tokens", help="May ask for transaction tokens: a gateway."),
]


def _exchange_policy(
    audiences: list[str] | None,
    accept: list[str] | None,
    subject_types: list[str] | None,
    actors: list[str] | None,
    delegation_only: bool,
    txn_tokens: bool,
) -> dict[str, Any] | None:
    """The policy the flags describe, or None when no flag was given."""
    if not (audiences or accept or subject_types or actors or delegation_only or txn_tokens):
        return None
    policy: dict[str, Any] = {
        "audiences": list(audiences or ()),
        "accept_audiences": list(accept or ()),
        "subject_types": list(subject_types or ("access_token",)),
        "allow_impersonation": not delegation_only,
        "txn_tokens": txn_tokens,
    }
    if actors:
        policy["actors"] = list(actors)
    return policy


def _encryption_lines(client: Client) -> list[str]:
    lines = []
    for label, alg, enc in (
        (
            "ID tokens",
            client.id_token_encrypted_response_alg,
            client.id_token_encrypted_response_enc,
        ),
        (
            "userinfo",
            client.userinfo_encrypted_response_alg,
            client.userinfo_encrypted_response_enc,
        ),
    ):
        if alg is not None:
            lines.append(f"{label + ':':<15}encrypted with {alg} / {enc}")
    return lines


_ENCRYPTION_HELP = "ALG[:ENC], e.g. RSA-OAEP-256 or ECDH-ES:A256GCM, to a key of --jwks-file."
IdTokenEncryption = Annotated[
    str | None, typer.Option("--id-token-encryption", help="Encrypt ID tokens: " + _ENCRYPTION_HELP)
]
UserinfoEncryption = Annotated[
    str | None,
    typer.Option("--userinfo-encryption", help="Encrypt userinfo answers: " + _ENCRYPTION_HELP),
]


def _encryption_option(flag: str, value: str | None) -> tuple[str | None, str | None]:
    """ALG[:ENC] as typed; ``none`` (for update) turns encryption off. Checked by the client."""
    if value is None or value.lower() == "none":
        return None, None
    alg, _, enc = value.partition(":")
    if not alg:
        raise CommandError(f"{flag}: name the key management algorithm, e.g. RSA-OAEP-256")
    return alg, enc or None


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
    refresh_grace: RefreshGrace = None,
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
    exchange_audience: ExchangeAudience = None,
    exchange_accept_audience: ExchangeAccept = None,
    exchange_subject_type: ExchangeSubjectType = None,
    exchange_actor: ExchangeActor = None,
    exchange_delegation_only: ExchangeDelegationOnly = False,
    exchange_txn_tokens: ExchangeTxnTokens = False,
    dpop_bound_access_tokens: Annotated[
        bool,
        typer.Option(
            "--dpop-bound-access-tokens",
            help="Every token request must carry a DPoP proof (RFC 9449 §5.2).",
        ),
    ] = False,
    require_par: Annotated[
        bool,
        typer.Option(
            "--require-par/--no-require-par",
            help="Accept only pushed authorization requests (RFC 9126) from this client.",
        ),
    ] = False,
    id_token_encryption: IdTokenEncryption = None,
    userinfo_encryption: UserinfoEncryption = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a client; prints its client_id and, once only, its secret."""
    from tokensmith.core.secrets import keyed_hash
    from tokensmith.oauth.clients import (
        ClientEncryption,
        NewClient,
        generate_client_id,
        generate_client_secret,
    )

    ttl = duration_option("--access-token-ttl", access_token_ttl)
    refresh_ttl = duration_option("--refresh-token-ttl", refresh_token_ttl)
    jwks = _read_jwks(jwks_file) if jwks_file is not None else None
    grace = _refresh_grace(refresh_grace)
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
        token_exchange=_exchange_policy(
            exchange_audience,
            exchange_accept_audience,
            exchange_subject_type,
            exchange_actor,
            exchange_delegation_only,
            exchange_txn_tokens,
        ),
        dpop_bound_access_tokens=dpop_bound_access_tokens,
        require_pushed_authorization_requests=require_par,
        encryption=ClientEncryption(
            _encryption_option("--id-token-encryption", id_token_encryption),
            _encryption_option("--userinfo-encryption", userinfo_encryption),
        ),
    )

    async def action(services: Services) -> tuple[Client, str | None]:
        # A JWKS of encryption keys alone leaves the client on a secret: validated decides.
        secret = None if public else generate_client_secret()
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
        if client.secret_hash is None:
            secret = None  # private_key_jwt: no secret to show
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
    exchange_audience: ExchangeAudience = None,
    exchange_accept_audience: ExchangeAccept = None,
    exchange_subject_type: ExchangeSubjectType = None,
    exchange_actor: ExchangeActor = None,
    exchange_delegation_only: ExchangeDelegationOnly = False,
    exchange_txn_tokens: ExchangeTxnTokens = False,
    dpop_bound_access_tokens: Annotated[
        bool | None,
        typer.Option(
            "--dpop-bound-access-tokens/--no-dpop-bound-access-tokens",
            help="Require (or stop requiring) a DPoP proof on every token request.",
        ),
    ] = None,
    require_par: Annotated[
        bool | None,
        typer.Option(
            "--require-par/--no-require-par",
            help="Accept only pushed authorization requests (RFC 9126) from this client, or not.",
        ),
    ] = None,
    id_token_encryption: IdTokenEncryption = None,
    userinfo_encryption: UserinfoEncryption = None,
    refresh_grace: RefreshGrace = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a client's permissions or what it gets encrypted (none: no longer). Exchange flags
    replace its whole token exchange policy."""
    policy = _exchange_policy(
        exchange_audience,
        exchange_accept_audience,
        exchange_subject_type,
        exchange_actor,
        exchange_delegation_only,
        exchange_txn_tokens,
    )
    grace = _refresh_grace(refresh_grace)  # checked before anything changes
    changes = (may_vouch_client_ip, policy, dpop_bound_access_tokens, require_par, refresh_grace)
    if id_token_encryption is not None or userinfo_encryption is not None:
        wanted = {"--id-token-encryption": id_token_encryption}
        wanted["--userinfo-encryption"] = userinfo_encryption
        client = run_with_services(lambda services: _set_encryption(services, client_id, wanted))
        if all(change is None for change in changes):
            emit(describe(client), as_json, _lines(client))
            return
    if all(change is None for change in changes):
        raise CommandError(
            "name a change, such as --may-vouch-client-ip, --exchange-audience,"
            " --dpop-bound-access-tokens, --require-par, --refresh-grace or"
            " --id-token-encryption"
        )
    allowed = may_vouch_client_ip

    async def action(services: Services) -> Client:
        client = await _get(services, client_id)
        if client.is_public and (allowed or policy is not None):
            raise CommandError(f"client {client_id} is public: it may not vouch nor exchange")
        now = services.clock.now()
        detail: dict[str, Any] = {}
        if allowed is not None:
            await services.clients.set_may_vouch_client_ip(client_id, allowed, now)
            detail["may_vouch_client_ip"] = allowed
        if policy is not None:
            await services.clients.set_token_exchange(client_id, _checked(client, policy), now)
            detail["token_exchange"] = policy
        if dpop_bound_access_tokens is not None:
            required = dpop_bound_access_tokens
            await services.clients.set_dpop_bound_access_tokens(client_id, required, now)
            detail["dpop_bound_access_tokens"] = required
        if require_par is not None:
            await services.clients.set_require_par(client_id, require_par, now)
            detail["require_pushed_authorization_requests"] = require_par
        if refresh_grace is not None:
            await services.clients.set_refresh_grace(client_id, grace, now)
            detail["refresh_grace"] = grace
        await record_change(services, "client.updated", client_id=client_id, detail=detail)
        return await _get(services, client_id)

    client = run_with_services(action)
    extra = [f"may vouch:     {client.may_vouch_client_ip}"] if allowed is not None else []
    emit(describe(client), as_json, [*_lines(client), *extra])


def _refresh_grace(option: str | None) -> int | None:
    """``--refresh-grace``: seconds (0 is off), or None for the server's window."""
    from tokensmith.oauth.clients import MAX_REFRESH_GRACE

    if option is None or option.strip().lower() == "default":
        return None
    seconds = duration_option("--refresh-grace", option) or 0
    if not 0 <= seconds <= MAX_REFRESH_GRACE:
        raise CommandError(f"the refresh grace window is 0 to {MAX_REFRESH_GRACE} seconds")
    return seconds


def _checked(client: Client, policy: dict[str, Any]) -> dict[str, Any]:
    from tokensmith.oauth.exchange_policy import TOKEN_EXCHANGE_GRANT, parse_policy

    if TOKEN_EXCHANGE_GRANT not in client.grant_types:
        raise CommandError(f"client {client.client_id} does not use {TOKEN_EXCHANGE_GRANT}")
    try:
        return parse_policy(policy).to_json()
    except ValueError as exc:
        raise CommandError(str(exc)) from None


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


async def _set_encryption(
    services: Services, client_id: str, changes: dict[str, str | None]
) -> Client:
    """Replace the named choices (the other kept), checked against the client's JWKS."""
    from tokensmith.oauth.clients import ClientEncryption

    client = await _get(services, client_id)
    current = ClientEncryption.of(client)
    id_token, userinfo = changes["--id-token-encryption"], changes["--userinfo-encryption"]
    wanted = ClientEncryption(
        _encryption_option("--id-token-encryption", id_token)
        if id_token is not None
        else current.id_token,
        _encryption_option("--userinfo-encryption", userinfo)
        if userinfo is not None
        else current.userinfo,
    )
    try:
        checked = wanted.for_client(client.jwks)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    await services.clients.set_encryption(client_id, checked, services.clock.now())
    await record_change(
        services, "client.updated", client_id=client_id, detail={"encryption": checked.columns()}
    )
    return await _get(services, client_id)


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
