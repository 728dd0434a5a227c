"""What the two example stacks share (``stack.py``, ``spa_stack.py``): the orders service and the
server in front of it run in this one process and stop together on Ctrl-C, from one command."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from tokensmith.adapters.logs import configure_logging

__all__ = ["main", "serve_both"]


async def serve_both(
    service: Any,
    service_url: str,
    front: Any,
    front_at: tuple[str, int],
    front_options: dict[str, Any],
    banner: str,
) -> None:
    """The service at ``service_url``; ``front`` (gateway or BFF) at ``front_at``, with the
    options its own command runs it with (``web.server.server_options``)."""
    where = urlsplit(service_url)
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                service,
                host=where.hostname or "127.0.0.1",
                port=where.port or 80,
                log_config=None,
                access_log=False,
            )
        ),
        uvicorn.Server(uvicorn.Config(front, host=front_at[0], port=front_at[1], **front_options)),
    ]
    print(banner, flush=True)
    await asyncio.gather(*(server.serve() for server in servers))


def main(doc: str, default_config: str, serve: Callable[[Path], Coroutine[Any, Any, None]]) -> None:
    """The command line: ``--config`` (``default_config`` beside this file), INFO logs."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    default = Path(__file__).resolve().parent / default_config
    parser.add_argument("--config", type=Path, default=default)
    args = parser.parse_args()
    configure_logging("INFO")
    asyncio.run(serve(args.config))
