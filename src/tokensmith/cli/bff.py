"""``tokensmith bff --config bff.toml``: the backend-for-frontend in front of a browser app."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tokensmith.adapters.logs import configure_logging

__all__ = ["bff"]


def bff(
    config: Annotated[Path, typer.Option("--config", help="The BFF's TOML file.")],
    host: Annotated[str | None, typer.Option("--host", help="Overrides bff.host.")] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Overrides bff.port.")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "INFO",
) -> None:
    """Serve the BFF: sign-in, sessions in HttpOnly cookies, and the API proxy for an SPA."""
    import uvicorn

    from tokensmith.bff import build_bff, load_config
    from tokensmith.web.connection import proxy_limits
    from tokensmith.web.server import server_options

    configure_logging(log_level.upper())
    settings = load_config(config)  # a bad file stops here, naming the key
    app = build_bff(settings)
    listen_host, listen_port = host or settings.host, port or settings.port
    sys.stderr.write(
        f"tokensmith bff: listening on http://{listen_host}:{listen_port} for "
        f"{settings.origin}, {len(settings.upstreams)} upstream(s), issuer {settings.issuer}\n"
    )
    uvicorn.run(app, host=listen_host, port=listen_port, **server_options(proxy_limits(settings)))
