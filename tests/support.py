"""Test helpers: databases on both backends, a real server in a thread, the CLI in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn

from tokensmith.runtime.services import Services
from tokensmith.settings import Settings
from tokensmith.web.app import create_app
from tokensmith.web.server import read_limits, server_options

REDIS_URL = os.environ.get("TOKENSMITH_TEST_REDIS", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "TOKENSMITH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REPO = Path(__file__).resolve().parent.parent
METRICS_TOKEN = "metrics-test-token-0123456789"
METRICS_AUTH = {"authorization": f"Bearer {METRICS_TOKEN}"}


@dataclass(frozen=True)
class Database:
    backend: str
    url: str
    schema: str | None

    def env(self) -> dict[str, str]:
        env = {"TOKENSMITH_DATABASE_URL": self.url}
        if self.schema:
            env["TOKENSMITH_DATABASE_SCHEMA"] = self.schema
        return env


def postgres_admin(statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@contextmanager
def postgres_schema() -> Iterator[str]:
    schema = f"ts_test_{os.getpid()}_{secrets.token_hex(4)}"
    postgres_admin(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        postgres_admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """The real ASGI app under uvicorn, on loopback, in a thread of the test process."""

    def __init__(
        self, settings: Settings, services: Services | None = None, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        app = create_app(settings, services)
        options = server_options(read_limits(settings), _tls(settings))
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        scheme = "https" if settings.tls_cert is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        if self.base_url.startswith("https"):
            _wait_for_port(self.port, self.thread.is_alive)
        else:
            wait_until_serving(self.base_url, lambda: self.thread.is_alive())
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _tls(settings: Settings) -> tuple[Path, Path] | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    return settings.tls_cert, settings.tls_key


def _wait_for_port(port: int, alive: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {port}")


def wait_until_serving(
    base_url: str, alive: Any = lambda: True, timeout: float = 20, verify: Any = True
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("server stopped before it served")
        try:
            if httpx.get(base_url + "/healthz", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{base_url} did not start")


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli_env(var_dir: Path, database: Database | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")}
    env["TOKENSMITH_VAR_DIR"] = str(var_dir)
    if database is not None:
        env.update(database.env())
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], stdin: str | None = None, cwd: Path | None = None
) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-m", "tokensmith", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or Path(env["TOKENSMITH_VAR_DIR"]).parent,
        timeout=60,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.code != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    # Structured log lines (such as the development master-key warning) may precede the error.
    lines = [line for line in result.stderr.splitlines() if line.strip() and not _is_log(line)]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _is_log(line: str) -> bool:
    try:
        return "level" in json.loads(line)
    except ValueError:
        return False


__all__ = [
    "METRICS_AUTH",
    "METRICS_TOKEN",
    "POSTGRES_URL",
    "REPO",
    "CliResult",
    "Database",
    "ServerThread",
    "TcpProxy",
    "assert_one_line_error",
    "cli_env",
    "free_port",
    "postgres_admin",
    "postgres_schema",
    "run_cli",
    "wait_until_serving",
]


class TcpProxy:
    """A loopback TCP relay that a test can cut and restore, to make a database go away."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.AbstractServer | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.thread.start()

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(5)

    def shutdown(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(
            self._relay, "127.0.0.1", self.port, reuse_address=True
        )

    async def _close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update({writer, up_writer})

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers.difference_update({writer, up_writer})
