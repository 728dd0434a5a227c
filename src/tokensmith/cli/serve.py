"""``tokensmith serve`` and ``tokensmith migrate``."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tokensmith import __version__
from tokensmith.adapters.logs import configure_logging
from tokensmith.errors import ConfigError, StartupError

if TYPE_CHECKING:
    from tokensmith.settings import Settings

__all__ = ["migrate", "serve"]


def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64)] = 1,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="PEM certificate chain; sets TLS_CERT.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="PEM private key; sets TLS_KEY.")
    ] = None,
) -> None:
    """Serve the authorization server."""
    # Imported as they are needed: a refusal to start comes before the web server is loaded.
    from tokensmith.runtime.lock import ServerLock
    from tokensmith.settings import load_settings

    # The options become settings, so every worker (and the checks below) sees the same ones.
    for name, value in (("TOKENSMITH_TLS_CERT", tls_cert), ("TOKENSMITH_TLS_KEY", tls_key)):
        if value is not None:
            os.environ[name] = str(value)
    settings = load_settings()
    scheme = "https" if settings.tls_cert is not None else "http"
    if "issuer" not in settings.model_fields_set and settings.mode == "development":
        # A development server's issuer follows where it listens, unless set explicitly.
        shown = f"[{host}]" if ":" in host else host
        os.environ["TOKENSMITH_ISSUER"] = f"{scheme}://{shown}:{port}"
        settings = load_settings()
    configure_logging(settings.log_level)
    tls = _check_transport(settings)
    lock = ServerLock(settings.var_dir)
    lock.acquire()
    try:
        _check_port_free(host, port)
        # Everything that can refuse to start does so here, once, before any worker exists.
        asyncio.run(_bootstrap(settings))
        _banner(settings, host, port)
        if workers > 1:
            _prepare_multiprocess_metrics(settings)
        _run_server(host, port, workers, tls)
    finally:
        lock.release()


def _run_server(host: str, port: int, workers: int, tls: tuple[Path, Path] | None) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from tokensmith.web.server import WorkerSocket, reuse_port_socket, server_options

    app = "tokensmith.web.app:create_app_from_environment"
    options = server_options(tls=tls)
    if workers == 1:
        uvicorn.run(app, factory=True, host=host, port=port, **options)
        return
    # What uvicorn.run does for workers, with a socket per worker (web/server.py).
    config = uvicorn.Config(app, factory=True, host=host, port=port, workers=workers, **options)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    parent = reuse_port_socket(family, host, port, kind=WorkerSocket)
    try:
        Multiprocess(config, sockets=[parent]).run()
    finally:
        parent.close()


def migrate() -> None:
    """Apply database migrations (safe to run on every deploy)."""
    from tokensmith.settings import load_settings

    settings = load_settings()
    configure_logging("WARNING")
    asyncio.run(_migrate(settings))


async def _migrate(settings: Settings) -> None:
    from tokensmith.persistence import migrate as migrations
    from tokensmith.persistence.database import describe_url
    from tokensmith.runtime.services import database_url, open_engine

    engine = await open_engine(settings)
    try:
        before = await migrations.current_revision(engine)
        await migrations.upgrade(engine)
        after = await migrations.current_revision(engine)
    finally:
        await engine.dispose()
    where = describe_url(database_url(settings))
    if before == after:
        typer.echo(f"database {where} is up to date (revision {after})")
    else:
        typer.echo(f"migrated database {where} from {before or 'empty'} to {after}")


async def _bootstrap(settings: Settings) -> None:
    from tokensmith.runtime.services import open_services

    services = await open_services(
        settings, apply_migrations=settings.mode == "development", create_keys=True
    )
    await services.close()


def _check_transport(settings: Settings) -> tuple[Path, Path] | None:
    """The certificate and key to serve TLS with, or None for plain HTTP, which production
    accepts only behind a declared TLS-terminating proxy."""
    if settings.tls_cert is not None and settings.tls_key is not None:
        for name, path in (("TLS_CERT", settings.tls_cert), ("TLS_KEY", settings.tls_key)):
            if not path.is_file():
                raise ConfigError(f"TOKENSMITH_{name}: {path} is not a readable file")
        _check_certificate(settings.tls_cert, settings.tls_key)
        return settings.tls_cert, settings.tls_key
    if settings.mode == "production" and not settings.proxy_networks:
        raise ConfigError(
            "production serves HTTPS: set TOKENSMITH_TLS_CERT and TOKENSMITH_TLS_KEY, or declare "
            "the TLS-terminating proxy in TOKENSMITH_TRUSTED_PROXIES"
        )
    return None


def _check_certificate(cert: Path, key: Path) -> None:
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"TOKENSMITH_TLS_CERT/TOKENSMITH_TLS_KEY: cannot load {cert} with {key} ({exc})"
        ) from None


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(f"port {port} on {host} is already in use") from None
            raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _prepare_multiprocess_metrics(settings: Settings) -> None:
    directory = settings.var_dir / "prometheus"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory.resolve())


def _banner(settings: Settings, host: str, port: int) -> None:
    from tokensmith.persistence.database import describe_url
    from tokensmith.runtime.services import database_url

    issuer = settings.issuer
    lines = [
        f"Tokensmith {__version__} ({settings.mode} mode), listening on {host}:{port}"
        + (" (TLS)" if settings.tls_cert is not None else ""),
        f"  issuer:    {issuer}",
        f"  discovery: {issuer}/.well-known/openid-configuration",
        f"  JWKS:      {issuer}/jwks",
        f"  database:  {describe_url(database_url(settings))}",
        "Create a first client (in another terminal):",
        "  .venv/bin/tokensmith clients create --name demo --grant-type client_credentials"
        ' --scope "api:read"',
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
