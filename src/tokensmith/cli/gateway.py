"""``tokensmith gateway --config gateway.toml``: the reverse proxy in front of internal services."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tokensmith.adapters.logs import configure_logging

__all__ = ["gateway"]


def gateway(
    config: Annotated[Path, typer.Option("--config", help="The gateway's TOML file.")],
    host: Annotated[str | None, typer.Option("--host", help="Overrides gateway.host.")] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Overrides gateway.port.")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "INFO",
) -> None:
    """Serve the gateway: outside tokens and API keys in, transaction tokens to the upstreams."""
    import uvicorn

    from tokensmith.gateway import build_gateway, load_config
    from tokensmith.gateway.probe import probe_introspection
    from tokensmith.web.connection import proxy_limits
    from tokensmith.web.server import server_options

    configure_logging(log_level.upper())
    settings = load_config(config)  # a bad file stops here, naming the key
    probe_introspection(settings)  # refused credentials stop here too; an absent issuer warns
    app = build_gateway(settings)
    listen_host, listen_port = host or settings.host, port or settings.port
    txn = settings.txn_tokens
    signer = settings.issuer if txn.mode == "mint" else settings.server.issuer
    sys.stderr.write(
        f"tokensmith gateway: http://{listen_host}:{listen_port}, "
        f"{len(settings.routes)} route(s), transaction tokens ({txn.mode}) from {signer}\n"
    )
    options = server_options(proxy_limits(settings))
    uvicorn.run(app, host=listen_host, port=listen_port, **options)
