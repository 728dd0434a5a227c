"""Test helpers: databases on both backends, a real server in a thread, the CLI in a subprocess."""

from __future__ import annotations

import asyncio
import atexit
import functools
import io
import json
import logging
import os
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt as pyjwt
import uvicorn
from joserfc import jwk as jose_jwk
from joserfc import jwt as jose_jwt
from joserfc.errors import SecurityWarning

from tokensmith.jose.keys import SigningKey
from tokensmith.oauth.client_credentials import ClientCredentialsGrant
from tokensmith.oauth.code_exchange import AuthorizationCodeGrant
from tokensmith.oauth.device_code import DeviceCodeGrant
from tokensmith.oauth.grant_types import GrantHandler
from tokensmith.oauth.params import Params
from tokensmith.oauth.refresh_rotation import RefreshTokenGrant
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.token_exchange import TokenExchangeGrant
from tokensmith.runtime.services import Services
from tokensmith.settings import Settings
from tokensmith.web.app import create_app
from tokensmith.web.server import read_limits, server_options

REDIS_URL = os.environ.get("TOKENSMITH_TEST_REDIS", "redis://127.0.0.1:6379/0")
# A Redis timeout for tests about counting, not outages: a loaded CI machine can take longer
# than the production default (0.25 s) to open a connection, which would mix in the fallback.
SLOW_MACHINE = 5.0
POSTGRES_URL = os.environ.get(
    "TOKENSMITH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REPO = Path(__file__).resolve().parent.parent
METRICS_TOKEN = "metrics-test-token-0123456789"
METRICS_AUTH = {"authorization": f"Bearer {METRICS_TOKEN}"}
# The storage backends a test may run on (tests/conftest.py: the backends marker).
BACKENDS = ("memory", "sqlite", "postgresql")
DATABASES = ("sqlite", "postgresql")


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


# Ports for the servers tests start. The kernel hands out the ports of ip_local_port_range for
# bind(("", 0)) and for every outgoing connection, so a port found free there can be taken by a
# connection to PostgreSQL or Redis before the server binds it, and another xdist worker's bind(0)
# can return it too: the test would then talk to someone else's server. Ports below that range
# are never handed out by the kernel, and each xdist worker takes its own slice of them.
_PORTS_FROM = 20_000
_held: dict[int, socket.socket] = {}


def _port_slice() -> range:
    low = _ephemeral_floor()
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    width = (low - _PORTS_FROM) // workers
    start = _PORTS_FROM + worker * width
    return range(start, start + width)


def _ephemeral_floor() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return min(int(text.split()[0]), 65_536)
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default; elsewhere a busy port is skipped all the same


def _next_ports() -> Iterator[int]:
    # From a random place in this worker's slice, so two runs on one machine rarely meet; in
    # order after that, so this process never hands out a port twice (a server of an earlier
    # test may still be closing).
    ports = _port_slice()
    if len(ports) < 100:  # an unusual ip_local_port_range: let the kernel choose
        while True:
            with _bound(0) as sock:
                yield int(sock.getsockname()[1])
    first = secrets.randbelow(len(ports))
    while True:
        for index in range(len(ports)):
            yield ports[(first + index) % len(ports)]


_ports = _next_ports()


def _bound(port: int, *, reuse: bool = False) -> socket.socket:
    sock = socket.socket()
    try:
        if reuse:  # past connections of a listener on this port may linger in TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def _claim() -> socket.socket:
    """A socket bound to this worker's next free port (no SO_REUSEADDR: TIME_WAIT counts)."""
    for _ in range(1000):
        port = next(_ports)
        try:
            return _bound(port)
        except OSError:
            continue
    raise RuntimeError("no free port in this worker's slice")


def free_port() -> int:
    """A free loopback port for a server in another process, which binds it soon after.

    For a server in this process use ``reserved_port`` (no race at all); for a port where
    nothing may listen, ``refused_port``."""
    with _claim() as sock:
        return int(sock.getsockname()[1])


@contextmanager
def reserved_port() -> Iterator[int]:
    """A port kept bound by this process until a ``ServerThread`` here listens on it."""
    sock = _claim()
    port = int(sock.getsockname()[1])
    _held[port] = sock
    try:
        yield port
    finally:
        unused = _held.pop(port, None)
        if unused is not None:
            unused.close()


def listening_socket(port: int | None = None) -> socket.socket:
    """A socket bound to ``port`` (held by ``reserved_port``, or new), or to a fresh port."""
    if port is None:
        return _claim()
    return _held.pop(port, None) or _bound(port)


@functools.cache
def refused_port() -> int:
    """A loopback port where connections are refused for the whole test process.

    The socket is bound and never listens: the kernel answers a connection with a reset, and
    gives the port to no other socket, of this process or another, while it is held."""
    sock = _claim()
    atexit.register(sock.close)
    return int(sock.getsockname()[1])


class ServerThread:
    """The real ASGI app under uvicorn, on loopback, in a thread of the test process."""

    def __init__(
        self,
        settings: Settings,
        services: Services | None = None,
        port: int | None = None,
        loop: str = "auto",  # uvicorn's: uvloop when installed, as `tokensmith serve`; or "asyncio"
    ) -> None:
        # Bound now and handed to uvicorn: nothing can take the port between here and listen().
        self.socket = listening_socket(port)
        self.port = int(self.socket.getsockname()[1])
        app = create_app(settings, services)
        options = server_options(read_limits(settings), _tls(settings))
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, lifespan="on", loop=loop, **options
        )
        self.server = QuickServer(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        scheme = "https" if settings.tls_cert is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        try:
            self._wait_started()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_started(self, timeout: float = 20) -> None:
        """Until uvicorn says it serves: the app's start-up is done and the socket listens. (No
        request to find out: each poll over HTTP cost a new client and up to 50 ms.)"""
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("server stopped before it served")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.base_url} did not start")
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()  # uvicorn closes it too, unless it never started


# For http.server's serve_forever: how often it looks whether shutdown() was called (its
# default, half a second, is what every test with such a server waited at its end).
POLL_INTERVAL = 0.01


class QuickServer(uvicorn.Server):
    """uvicorn's server, which stops within 10 ms of ``should_exit`` rather than at its next
    tick, and without its tenth of a second for open connections when none is open: the suite
    starts and stops hundreds of servers."""

    async def main_loop(self) -> None:
        # uvicorn's loop, with its 0.1 s sleep cut into ten: on_tick keeps its cadence (the date
        # header is renewed every tenth tick, once a second).
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            for _ in range(10):
                await asyncio.sleep(0.01)
                if self.should_exit:
                    break
            counter = (counter + 1) % 864_000
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.server_state.connections or self.server_state.tasks or self.force_exit:
            await super().shutdown(sockets)  # someone is still there: uvicorn's grace period
            return
        # No connection to ask to finish: stop listening, then the app's own shutdown (lifespan),
        # as uvicorn does after its wait.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


async def add_machine_client(
    services: Services, name: str = "worker", scope: str = "api:read", **options: Any
) -> tuple[str, str]:
    """A client_credentials client, stored through ``services``: its id and secret.
    ``options``: more of ``NewClient``'s fields (``access_token_format``, ``rate_limit``...)."""
    from tokensmith.core.secrets import keyed_hash
    from tokensmith.oauth.clients import NewClient, generate_client_id, generate_client_secret

    secret = generate_client_secret()
    client = NewClient(name, grant_types=("client_credentials",), scope=scope, **options).validated(
        generate_client_id(),
        keyed_hash(services.master.pepper, secret),
        services.clock.now(),
        offered=OFFERED,
    )
    await services.clients.add(client)
    return client.client_id, secret


def seed_migrated_sqlite(settings: Settings) -> None:
    """Give a test's SQLite database, if it does not exist yet, the schema at head, copied from
    one migrated once per test process: the migrations cost a server's start about 60 ms of
    its 100. (Only for tests about what is in the database, not about migrating it.)"""
    url = settings.effective_database_url
    if not url.startswith("sqlite:///"):
        return
    target = Path(url.removeprefix("sqlite:///"))
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(_migrated_sqlite()) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    source.close()
    copy.close()


@functools.cache
def _migrated_sqlite() -> Path:
    from tokensmith.persistence import migrate
    from tokensmith.persistence.connections import close_connections
    from tokensmith.runtime.services import open_engine
    from tokensmith.settings import load_settings

    directory = Path(tempfile.mkdtemp(prefix="tokensmith-schema-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = directory / "head.db"
    settings = load_settings(var_dir=directory, database_url=f"sqlite:///{path}")

    async def run() -> None:
        engine = await open_engine(settings)
        try:
            await migrate.upgrade(engine)
        finally:
            close_connections(engine)
            await engine.dispose()

    asyncio.run(run())
    return path


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
    # One client for every poll: a new one loads the CA bundle again, some 20 ms of CPU.
    with httpx.Client(timeout=1, verify=verify) as client:
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError("server stopped before it served")
            try:
                if client.get(base_url + "/healthz").status_code == 200:
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

    @property
    def said(self) -> str:
        """stderr without structured log lines: a server running in this test process may flush
        its access log while a command runs here, and those lines are the server's, not the
        command's."""
        return "".join(line for line in self.stderr.splitlines(True) if not _is_log(line))


def cli_env(var_dir: Path, database: Database | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")}
    env["TOKENSMITH_VAR_DIR"] = str(var_dir)
    if database is not None:
        env.update(database.env())
    env.update(extra)
    return env


# Commands that start a server: uvicorn takes over the process (its signal handlers, its
# workers), and how the process starts or refuses to is what their tests are about.
PROCESS_COMMANDS = frozenset({"serve", "gateway", "bff"})


def run_cli(
    args: list[str], env: dict[str, str], stdin: str | None = None, cwd: Path | None = None
) -> CliResult:
    """``python -m tokensmith ARGS`` with this environment, standard input and directory.

    Run here, in the test process, through the same ``main`` (its one-line errors and exit
    codes): a new interpreter would spend a second importing the server for every call. The
    process's environment, directory, standard streams, argv and logging are the command's
    while it runs and are put back after. ``serve``, ``gateway`` and ``bff`` run in a child process
    (``run_cli_process``), as does any test about the process itself."""
    if args and args[0] in PROCESS_COMMANDS:
        return run_cli_process(args, env, stdin, cwd)
    return _run_cli_here(args, env, stdin, cwd or Path(env["TOKENSMITH_VAR_DIR"]).parent)


def run_cli_process(
    args: list[str], env: dict[str, str], stdin: str | None = None, cwd: Path | None = None
) -> CliResult:
    """``python -m tokensmith ARGS`` in a new process: for what only a real process shows."""
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


def _run_cli_here(args: list[str], env: dict[str, str], stdin: str | None, cwd: Path) -> CliResult:
    from tokensmith.cli.main import main

    out, err = _pipe(), _pipe()
    with _as_the_command(env, cwd, io.StringIO(stdin or ""), out, err):
        try:
            main(args, prog_name="python -m tokensmith")
            code = 0
        except SystemExit as exc:  # how main always ends
            code = _exit_status(exc.code, err)
        except Exception:  # what the interpreter does with an exception nothing caught
            traceback.print_exc(file=err)
            code = 1
    return CliResult(code, _read(out), _read(err))


def _pipe() -> io.TextIOWrapper:
    """A text stream shaped like a child's piped stdout: UTF-8, a binary buffer, not a tty."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)


def _read(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode()


def _exit_status(code: object, err: io.TextIOWrapper) -> int:
    """What ``sys.exit(code)`` makes a process's exit status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    err.write(f"{code}\n")
    return 1


_cli_lock = threading.Lock()


@contextmanager
def _as_the_command(
    env: dict[str, str], cwd: Path, stdin: io.StringIO, out: io.TextIOWrapper, err: io.TextIOWrapper
) -> Iterator[None]:
    with _cli_lock:
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        saved_streams = sys.stdin, sys.stdout, sys.stderr
        saved_argv, saved_hook = sys.argv, sys.excepthook
        saved_logging = _logging_state()
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        sys.stdin, sys.stdout, sys.stderr = stdin, out, err
        sys.argv = [str(REPO / "src" / "tokensmith" / "__main__.py")]
        try:
            yield
        finally:
            _restore_logging(saved_logging)
            sys.argv, sys.excepthook = saved_argv, saved_hook
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)


_LoggerState = tuple[list[logging.Handler], int, bool, bool]


# The loggers configure_logging sets up besides the root, made here if they do not exist yet so
# that their state before the command is known.
_CONFIGURED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore")


def _logging_state() -> dict[logging.Logger, _LoggerState]:
    """Every logger's handlers, level, propagation and switch: ``configure_logging`` sets them
    for the process, and the next test's logging (pytest's capture) must find its own."""
    for name in _CONFIGURED_LOGGERS:
        logging.getLogger(name)
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]  # fmt: skip
    return {
        logger: (list(logger.handlers), logger.level, logger.propagate, logger.disabled)
        for logger in loggers
    }


def _restore_logging(saved: dict[logging.Logger, _LoggerState]) -> None:
    for logger, (handlers, level, propagate, disabled) in saved.items():
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


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
    "POLL_INTERVAL",
    "POSTGRES_URL",
    "REPO",
    "CliResult",
    "Database",
    "QuickServer",
    "ServerThread",
    "TcpProxy",
    "assert_one_line_error",
    "cli_env",
    "free_port",
    "listening_socket",
    "postgres_admin",
    "postgres_schema",
    "refused_port",
    "reserved_port",
    "run_cli",
    "run_cli_process",
    "seed_migrated_sqlite",
    "wait_until_serving",
]


class TcpProxy:
    """A loopback TCP relay that a test can cut and restore, to make a database go away."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        # Held (bound, not listening: connections are refused) whenever the relay is stopped,
        # so the port is still this proxy's when it starts again.
        self.holder: socket.socket | None = _claim()
        # Inherited by the relay's accepted connections, which keep the port as their own: the
        # port can be held again while they close.
        self.holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = int(self.holder.getsockname()[1])
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
        if self.holder is not None:
            self.holder.close()
            self.holder = None

    async def _listen(self) -> None:
        if self.server is not None:
            return
        held, self.holder = self.holder, None
        sock = held or _bound(self.port, reuse=True)
        self.server = await asyncio.start_server(self._relay, sock=sock)

    async def _close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
            self.holder = _bound(self.port, reuse=True)
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


def token_request(
    params: Params, *, authorization: str | None = None, source: str = "127.0.0.1"
) -> ProtocolRequest:
    """A /token request as protocol code sees it, for tests that call a grant directly."""
    headers = {"authorization": authorization} if authorization else {}
    return ProtocolRequest("POST", "http://127.0.0.1:8000/token", params, source, headers)


@dataclass(frozen=True)
class _Offered:
    """Every grant this version implements, as a running registry would offer them."""

    grants: tuple[type[GrantHandler], ...] = (
        AuthorizationCodeGrant,
        RefreshTokenGrant,
        ClientCredentialsGrant,
        DeviceCodeGrant,
        TokenExchangeGrant,
    )

    @property
    def grant_types(self) -> tuple[str, ...]:
        return tuple(grant.grant_type for grant in self.grants)

    def confidential_only(self) -> frozenset[str]:
        return frozenset(grant.grant_type for grant in self.grants if grant.confidential_only)


OFFERED = _Offered()


def verify_both(token: str, key: SigningKey) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a token ``key`` signed, as joserfc and PyJWT each verify it
    against the key's published JWK; fails the test unless both accept it and read the same."""
    jwk = key.public_jwk()
    with warnings.catch_warnings():  # RFC 9864 deprecates the name "EdDSA"; we still issue it
        warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
        decoded = jose_jwt.decode(token, jose_jwk.import_key(jwk), algorithms=[key.alg])
    # PyJWT knows Ed25519 (RFC 9864) only by its older name: the same algorithm, registered here.
    algorithm = pyjwt.algorithms.get_default_algorithms()[
        "EdDSA" if key.alg == "Ed25519" else key.alg
    ]
    jws = pyjwt.PyJWS()
    if key.alg == "Ed25519":
        jws.register_algorithm("Ed25519", algorithm)
    verified = jws.decode_complete(token, algorithm.from_jwk(jwk), algorithms=[key.alg])
    header, claims = dict(decoded.header), dict(decoded.claims)
    assert verified["header"] == header
    assert json.loads(verified["payload"]) == claims
    return header, claims


class DevicePageError(AssertionError):
    """The /device page did not answer as a person following it would expect."""


def _form_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    if found is None:
        raise DevicePageError(f"no {name} on the page: {html[:400]!r}")
    return found.group(1)


def approve_device_code(
    base_url: str, user_code: str, username: str, password: str, *, approve: bool = True
) -> httpx.Response:
    """Drive /device as a person would, in a fresh browser (its own cookies): open the page from
    ``verification_uri_complete``, sign in, submit the prefilled code, then Allow (or Deny).
    Returns the last page; raises DevicePageError at the first step that does not work."""
    with httpx.Client(base_url=base_url, timeout=10) as browser:
        page = browser.get("/device", params={"user_code": user_code})
        if page.status_code != 200:
            raise DevicePageError(f"GET /device: {page.status_code}")
        csrf = _form_value(page.text, "csrf_token")
        if 'name="password"' in page.text:
            page = browser.post(
                "/device",
                data={
                    "csrf_token": csrf,
                    "step": "signin",
                    "username": username,
                    "password": password,
                    "user_code": user_code,
                },
            )
            if page.status_code != 200:
                raise DevicePageError(f"sign-in: {page.status_code} {page.text[:400]!r}")
        code = _form_value(page.text, "user_code")
        page = browser.post("/device", data={"csrf_token": csrf, "step": "code", "user_code": code})
        if page.status_code != 200:
            raise DevicePageError(f"code entry: {page.status_code} {page.text[:400]!r}")
        decision = {
            "csrf_token": csrf,
            "step": "decide",
            "grant": _form_value(page.text, "grant"),
            "decision": "allow" if approve else "deny",
        }
        page = browser.post("/device", data=decision)
        if page.status_code != 200:
            raise DevicePageError(f"decision: {page.status_code} {page.text[:400]!r}")
        return page
