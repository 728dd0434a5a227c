"""The bench scenarios driven straight into the ASGI app, in this process, with no HTTP server.

What a request costs Tokensmith's own code (the envelope, routing, the pipeline, the grant,
storage, JOSE, audit and logs), in CPU µs, and where that time goes:

    .venv/bin/python -m bench.profile                       # every scenario, SQLite
    .venv/bin/python -m bench.profile --only cc_jwt,code --profile 25
    .venv/bin/python -m bench.profile --backend postgresql
    .venv/bin/python -m bench.profile --only api_key        # POST /api-keys/verify, one live key

The HTTP server's share is what ``make bench`` adds on top. ``--profile N`` runs the scenario
again under cProfile and prints the N functions with the most time of their own
(``--sort cumulative``: with the most time inside them).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.fixtures import make_fixtures
from bench.load import Request
from bench.scenarios import SCENARIOS, Scenario
from bench.tokensmith_server import TokensmithServer

__all__ = ["main"]


class _Driver:
    """Sends one request at a time through the app's ASGI interface."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.status = 0
        self.body = b""

    async def startup(self) -> None:
        self._lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._lifespan.put_nowait({"type": "lifespan.startup"})
        self._replies: asyncio.Queue[str] = asyncio.Queue()

        async def send(message: dict[str, Any]) -> None:
            self._replies.put_nowait(message["type"])

        self._task = asyncio.ensure_future(self.app({"type": "lifespan"}, self._lifespan.get, send))
        reply = await self._replies.get()
        if reply != "lifespan.startup.complete":
            raise SystemExit(f"the app did not start: {reply}")

    async def shutdown(self) -> None:
        self._lifespan.put_nowait({"type": "lifespan.shutdown"})
        await self._task

    async def call(self, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif message["type"] == "http.response.body":
                self.body += message.get("body", b"")

        self.body = b""
        await self.app(scope, receive, send)
        return self.status


def _bodies(request: Request, count: int) -> Iterator[bytes]:
    if request.values_file is None:
        body = request.body.encode()
        for _ in range(count):
            yield body
        return
    with request.values_file.open() as values:
        for _ in range(count):
            value = values.readline().strip()
            yield request.body.replace("{value}", value).encode()


def _headers(request: Request, length: int) -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench.profile")]
    headers.append((b"content-type", b"application/x-www-form-urlencoded"))
    headers.append((b"content-length", str(length).encode()))
    headers += [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    return headers


async def _run(args: argparse.Namespace, server: TokensmithServer) -> None:
    from tokensmith.runtime.services import open_services
    from tokensmith.settings import load_settings
    from tokensmith.web.app import create_app

    count = args.requests
    os.environ.update({k: v for k, v in server.env().items() if k.startswith("TOKENSMITH_")})
    os.environ["TOKENSMITH_LOG_LEVEL"] = "WARNING"
    settings = load_settings()
    services = await open_services(settings)
    app = create_app(settings, services)
    driver = _Driver(app)
    await driver.startup()
    # One opaque token to introspect, issued through the app itself.
    token_request = SCENARIOS["cc_opaque"].build(server, 0)
    body = token_request.body.encode()
    await driver.call(token_request.path, body, _headers(token_request, len(body)))
    server.introspect_token = json.loads(driver.body)["access_token"]
    scenarios = {**SCENARIOS, "api_key": await _api_key_scenario(services)}
    keys = args.only.split(",") if args.only else list(scenarios)
    for key in keys:
        await _measure(driver, scenarios[key].build, server, key, count, args.profile, args.sort)
    await driver.shutdown()
    await services.close()


async def _api_key_scenario(services: Any) -> Scenario:
    """``POST /api-keys/verify`` with one live key, as the bench's apikeys phase sends it."""
    from tokensmith.apikeys.lifecycle import NewApiKey

    created = await services.key_manager.create(
        NewApiKey(name="bench", owner="bench", scope="api:read"), "bench"
    )

    def build(server: Any, _round: int) -> Request:
        return Request("/api-keys/verify", "", {"X-API-Key": created.key})

    return Scenario("api_key", "API-key verification", build)


async def _measure(
    driver: _Driver,
    build: Any,
    server: TokensmithServer,
    key: str,
    count: int,
    top: int,
    sort: str,
) -> None:
    warm = build(server, 0)
    for body in _bodies(warm, min(200, count)):
        status = await driver.call(warm.path, body, _headers(warm, len(body)))
        if status != 200:
            raise SystemExit(f"{key}: {status} {driver.body[:300]!r}")
    request = build(server, 1)
    bodies = list(_bodies(request, count))
    cpu, wall = time.process_time(), time.perf_counter()
    for body in bodies:
        await driver.call(request.path, body, _headers(request, len(body)))
    await asyncio.sleep(0.6)  # the audit trail's and the access log's batches are written
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall - 0.6
    print(f"{key:12} {cpu / count * 1e6:8.0f} CPU µs/req   {count / wall:8.0f} req/s in process")
    if top:
        again = build(server, 2)
        bodies = list(_bodies(again, count))
        profiler = cProfile.Profile()
        profiler.enable()
        for body in bodies:
            await driver.call(again.path, body, _headers(again, len(body)))
        await asyncio.sleep(0.6)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(sort).print_stats(top)
        print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--only", default="")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--sort", choices=("tottime", "cumulative"), default="tottime")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tokensmith-profile-") as directory:
        home = Path(directory)
        fixtures = make_fixtures(home, rounds=2, per_round=args.requests * 2)
        server = TokensmithServer(
            home / "server", backend=args.backend, workers=1, port=8000, fixtures=fixtures
        )
        try:
            server.prepare(pools=True)
            asyncio.run(_run(args, server))
        finally:
            server.drop()


if __name__ == "__main__":
    main()
