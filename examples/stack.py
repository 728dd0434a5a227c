"""One command for the example stack: the orders service and the gateway in front of it.

    GATEWAY_CLIENT_ID=... GATEWAY_CLIENT_SECRET=... python examples/stack.py [--config FILE]

Needs a running Tokensmith (``make run``) at the configured authorization server. Both servers run
in this one process and stop together on Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from orders_service import create_app
from two_servers import main, serve_both

from tokensmith.gateway import build_gateway, load_config
from tokensmith.web.connection import proxy_limits
from tokensmith.web.server import server_options


async def serve(config_path: Path) -> None:
    config = load_config(config_path)
    if config.signing_key_file is not None:  # mint mode: created on first start
        config.signing_key_file.parent.mkdir(parents=True, exist_ok=True)
    route = config.route_for("/orders")
    if route is None:
        raise SystemExit("the example config needs a route for /orders")
    if config.txn_tokens.mode == "exchange":  # Tokensmith signs the transaction tokens
        issuer = config.server.issuer
        jwks_uri = config.server.jwks_uri or issuer.rstrip("/") + "/jwks"
    else:  # the gateway signs them
        issuer, jwks_uri = config.issuer, config.issuer + "/.well-known/jwks.json"
    await serve_both(
        create_app(issuer, route.audience, jwks_uri, transaction_tokens=True),
        route.upstream,
        build_gateway(config),
        (config.host, config.port),
        # as `tokensmith gateway` runs it: header cap, read timeouts, no proxy headers
        server_options(proxy_limits(config)),
        f"orders service on {route.upstream}, gateway on {config.issuer}",
    )


if __name__ == "__main__":
    main(__doc__, "gateway.toml", serve)
