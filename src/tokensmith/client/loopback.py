"""The loopback redirect listener of a native app's sign-in (RFC 8252 §7.3, §8.3).

Bound to 127.0.0.1 on a port the kernel picks (never 0.0.0.0, never ``localhost``, which may
resolve elsewhere), it waits for one ``GET /callback`` carrying this sign-in's ``state``,
answers a small page, and stops. Any local process, or a web page that rebinds a DNS name to
127.0.0.1, can reach the port, so:

- only an answer whose one ``state`` equals ours (compared in constant time) ends the wait; any
  other callback is 400 and the wait goes on, so a forged answer sent first can neither be taken
  for the real one nor make the real one be lost (RFC 9700 §4.7, RFC 8252 §8.9);
- the ``Host`` header must be ``127.0.0.1:<port>``, or the request is 400 (DNS rebinding);
- each connection is served on its own thread with a read time-out, so a connection that
  dribbles its request (slowloris) never holds up the browser's.

Other paths are 404, other methods 501, a callback after the answer 409. It never logs a
request line, which carries the authorization code.
"""

from __future__ import annotations

import hmac
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tokensmith.client.errors import LoginError

__all__ = ["LoopbackListener"]

_PAGE = (
    b"<!doctype html><html><head><meta charset=utf-8><title>Tokensmith</title></head>"
    b"<body><p>Signed in. You can close this window and return to your terminal.</p>"
    b"</body></html>"
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a connection that stops sending is cut off

    def do_GET(self) -> None:
        if self.headers.get_all("host") != [self.server.host]:
            self._answer(400, b"wrong host")
            return
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self._answer(404, b"not found")
            return
        taken = self.server.take(parts.query)
        if taken is None:
            self._answer(409, b"this sign-in already finished")
        elif not taken:
            self._answer(400, b"this answer is not for this sign-in")
        else:
            self._answer(200, _PAGE, "text/html; charset=utf-8")

    def _answer(self, status: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.send_header("cache-control", "no-store")
        self.send_header("referrer-policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the request line holds the authorization code."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # closing never waits on a connection that hangs

    def __init__(self, state: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.host = f"127.0.0.1:{self.server_address[1]}"
        self.query: str | None = None
        self.arrived = threading.Event()
        self._state = state.encode()
        self._once = threading.Lock()

    def take(self, query: str) -> bool | None:
        """True when ``query`` is this sign-in's answer (and now the answer), False when it is
        not ours, None when the answer already came."""
        states = parse_qs(query, keep_blank_values=True).get("state", [])
        ours = len(states) == 1 and hmac.compare_digest(states[0].encode(), self._state)
        with self._once:
            if self.query is not None:
                return None
            if not ours:
                return False
            self.query = query
        self.arrived.set()
        return True


class LoopbackListener:
    """The listener for one sign-in, whose authorization request carries ``state``."""

    def __init__(self, state: str) -> None:
        self._server = _Server(state)
        self.port = int(self._server.server_address[1])
        self.redirect_uri = f"http://127.0.0.1:{self.port}/callback"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> LoopbackListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def wait(self, timeout: float) -> dict[str, str]:
        """The callback's query parameters; LoginError on a timeout or a repeated parameter."""
        if not self._server.arrived.wait(timeout):
            raise LoginError(f"no answer from the browser within {timeout:.0f} s")
        query = self._server.query or ""
        values = parse_qs(query, keep_blank_values=True)
        if any(len(v) != 1 for v in values.values()):  # RFC 6749 §3.1: each parameter once
            raise LoginError("the sign-in answer repeats a parameter; refused")
        return {name: v[0] for name, v in values.items()}
