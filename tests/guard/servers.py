"""Small real HTTP servers for the guard and gateway tests: any ASGI or WSGI app, a stub JSON
server that counts its hits, all on loopback in threads."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import uvicorn

from tests.support import POLL_INTERVAL, QuickServer, listening_socket, wait_until_serving

__all__ = ["Answer", "StubServer", "asgi_server", "wsgi_server"]

Answer = tuple[int, dict[str, str], Any]  # status, headers, JSON payload


@contextmanager
def asgi_server(
    app: Any, health: str = "/healthz", sock: Any = None, **options: Any
) -> Iterator[str]:
    """``options``: uvicorn's, such as ``server_options(...)`` to run it as production does.
    ``sock``: a listening socket of the caller's (whose port it needed to know before)."""
    # Bound before uvicorn starts: no other server can take the port.
    sock = sock if sock is not None else listening_socket()
    port = int(sock.getsockname()[1])
    defaults = {"log_config": None, "access_log": False, "proxy_headers": False}
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="auto", **{**defaults, **options}
    )
    server = QuickServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_port(port, thread.is_alive)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class _QuietWsgi(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWsgi(WSGIServer):
    daemon_threads = True


@contextmanager
def wsgi_server(app: Any) -> Iterator[str]:
    # Port 0: the server binds and listens at once, so no other server can take its port.
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietWsgi)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _wait_for_port(port: int, alive: Callable[[], bool]) -> None:
    import socket
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and alive():
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {port}")


class StubServer:
    """Answers GET/POST on any path with what ``routes[path]`` says (an answer, or a function of
    the request body that returns one); counts hits per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Answer | Callable[[bytes], Answer]] = {}
        self.hits: dict[str, int] = {}
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                stub.hits[path] = stub.hits.get(path, 0) + 1
                stub.requests.append((path, {k.lower(): v for k, v in self.headers.items()}, body))
                route = stub.routes.get(path, (404, {}, {"error": "none"}))
                status, headers, payload = route(body) if callable(route) else route
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
        )

    def __enter__(self) -> StubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


_ = wait_until_serving  # re-exported helpers stay importable from one place
