"""The framework ceiling: Tokensmith's server stack answering with one HMAC and nothing else.

No routing beyond one route, no envelope, no database: what Starlette under uvicorn (with
Tokensmith's uvicorn options and worker count) can do on this machine at best.

    python -m bench.ceiling --port 8100 --workers 1
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.load import Request as LoadRequest
from bench.procs import Group, wait_for_http
from tokensmith.web.server import UVICORN_OPTIONS

__all__ = ["CeilingServer", "app"]

_KEY = os.urandom(32)
_REPO = Path(__file__).resolve().parent.parent


async def _digest(request: Request) -> JSONResponse:
    value = request.headers.get("x-token", "").encode()
    return JSONResponse({"mac": hmac.new(_KEY, value, hashlib.sha256).hexdigest()})


app = Starlette(routes=[Route("/hmac", _digest, methods=["GET"])])


class CeilingServer:
    name = "framework ceiling"

    def __init__(self, home: Path, *, workers: int, port: int, loop: str = "auto") -> None:
        self.home = home
        self.workers = workers
        self.port = port
        self.loop = loop  # uvicorn's: "auto" picks uvloop when installed (it is), or "asyncio"
        self.base_url = f"http://127.0.0.1:{port}"
        self.group: Group | None = None
        home.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        argv = [sys.executable, "-m", "bench.ceiling", "--port", str(self.port)]
        env = dict(os.environ) | {"PYTHONPATH": str(_REPO)}
        self.group = Group(
            self.name,
            [*argv, "--workers", str(self.workers), "--loop", self.loop],
            env=env,
            cwd=_REPO,
            log=self.home / "server.log",
        )
        wait_for_http(self.base_url + "/hmac", self.group)

    def stop(self) -> None:
        if self.group is not None:
            self.group.stop()
            self.group = None

    @staticmethod
    def request() -> LoadRequest:
        return LoadRequest("/hmac", "", {"X-Token": "tsk_" + "a" * 43}, method="GET")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"])
    args = parser.parse_args()
    uvicorn.run(
        "bench.ceiling:app",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        loop=args.loop,
        **UVICORN_OPTIONS,
    )
