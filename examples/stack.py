"""One command for the example stack: the orders service and the gateway in front of it.

    GATEWAY_CLIENT_ID=... GATEWAY_CLIENT_SECRET=... python examples/stack.py [--config FILE]

Needs a running Tokensmith (``make run``) at the configured authorization server. Both servers run
in this one process and stop together on Ctrl-C.
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
from tokensmith.cli.gateway import gateway_limits
from tokensmith.gateway import build_gateway, load_config
from tokensmith.web.server import server_options


async def serve(config_path: Path) -> None:
    config = load_config(config_path)
    config.signing_key_file.parent.mkdir(parents=True, exist_ok=True)
    route = config.route_for("/orders")
    if route is None:
        raise SystemExit("the example config needs a route for /orders")
    upstream = urlsplit(route.upstream)
    service = create_app(config.issuer, route.audience)
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                service,
                host=upstream.hostname or "127.0.0.1",
                port=upstream.port or 80,
                log_config=None,
                access_log=False,
            )
        ),
        uvicorn.Server(
            uvicorn.Config(
                build_gateway(config),
                host=config.host,
                port=config.port,
                # as `tokensmith gateway` runs it: header cap, read timeouts, no proxy headers
                **server_options(gateway_limits(config)),
            )
        ),
    ]
    print(f"orders service on {route.upstream}, gateway on {config.issuer}", flush=True)
    await asyncio.gather(*(server.serve() for server in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent / "gateway.toml"
    parser.add_argument("--config", type=Path, default=default)
    args = parser.parse_args()
    configure_logging("INFO")
    asyncio.run(serve(args.config))


if __name__ == "__main__":
    main()
