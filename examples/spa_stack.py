"""One command for the SPA example: the orders API and the BFF that serves the SPA.

    BFF_CLIENT_ID=... BFF_CLIENT_SECRET=... python examples/spa_stack.py [--config FILE]

Needs a running Tokensmith (``make run``) at the configured authorization server, and a
confidential client registered there with the BFF's callback (examples/README.md). Both servers
run in this one process and stop together on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from orders_service import create_app

from tokensmith.adapters.logs import configure_logging
from tokensmith.bff import build_bff, load_config
from tokensmith.cli.bff import bff_limits
from tokensmith.web.server import server_options


async def serve(config_path: Path) -> None:
    config = load_config(config_path)
    upstream = config.upstream_for("/bff/api/orders")
    if upstream is None:
        raise SystemExit("the example config needs an upstream for /bff/api/orders")
    where = urlsplit(upstream.url)
    # Behind the BFF the API sees Tokensmith's own access tokens (audience: the issuer).
    api = create_app(config.issuer, config.issuer, jwks_uri=config.issuer + "/jwks")
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                api,
                host=where.hostname or "127.0.0.1",
                port=where.port or 80,
                log_config=None,
                access_log=False,
            )
        ),
        uvicorn.Server(
            uvicorn.Config(
                build_bff(config),
                host=config.host,
                port=config.port,
                **server_options(bff_limits(config)),  # as `tokensmith bff` runs it
            )
        ),
    ]
    print(f"orders API on {upstream.url}, the SPA and its BFF on {config.origin}", flush=True)
    await asyncio.gather(*(server.serve() for server in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent / "bff.toml"
    parser.add_argument("--config", type=Path, default=default)
    args = parser.parse_args()
    configure_logging("INFO")
    asyncio.run(serve(args.config))


if __name__ == "__main__":
    main()
