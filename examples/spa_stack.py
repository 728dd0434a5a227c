"""One command for the SPA example: the orders API and the BFF that serves the SPA.

    BFF_CLIENT_ID=... BFF_CLIENT_SECRET=... python examples/spa_stack.py [--config FILE]

Needs a running Tokensmith (``make run``) at the configured authorization server, and a
confidential client registered there with the BFF's callback (examples/README.md). Both servers
run in this one process and stop together on Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from orders_service import create_app
from two_servers import main, serve_both

from tokensmith.bff import build_bff, load_config
from tokensmith.web.connection import proxy_limits
from tokensmith.web.server import server_options


async def serve(config_path: Path) -> None:
    config = load_config(config_path)
    upstream = config.upstream_for("/bff/api/orders")
    if upstream is None:
        raise SystemExit("the example config needs an upstream for /bff/api/orders")
    await serve_both(
        # Behind the BFF the API sees Tokensmith's own access tokens (audience: the issuer).
        create_app(config.issuer, config.issuer, jwks_uri=config.issuer + "/jwks"),
        upstream.url,
        build_bff(config),
        (config.host, config.port),
        server_options(proxy_limits(config)),  # as `tokensmith bff` runs it
        f"orders API on {upstream.url}, the SPA and its BFF on {config.origin}",
    )


if __name__ == "__main__":
    main(__doc__, "bff.toml", serve)
