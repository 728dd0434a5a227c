"""A fault-injecting TCP relay between the code under test and PostgreSQL or Redis.

The machine's services are never stopped: a test puts a ``FaultProxy`` in front of one, points
the app at the proxy's port, and switches faults on and off while traffic flows:

- ``cut()``: new connections are refused and open ones are reset (RST), as when a service or its
  host goes down;
- ``reset()``: open connections are reset, new ones are served (a restart, a firewall flush, a
  load balancer dropping idle connections);
- ``partition()``: connections stay open and new ones are accepted, but nothing is delivered in
  either direction (a network partition: no error, only silence); what was sent meanwhile is
  delivered once healed, as TCP's retransmission would;
- ``latency(seconds)``: every chunk is delayed by ``seconds`` in each direction;
- ``heal()``: back to a plain relay.

Loopback only, and every wait is bounded: the relay's thread is a daemon and ``close()`` (or
leaving the ``with`` block) aborts whatever is still open.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Self

import uvloop

from tests.support import listening_socket

__all__ = ["LOOPS", "FaultProxy", "LoopRunner", "fault_proxy"]

LoopRunner = Callable[[Coroutine[Any, Any, None]], None]
# The two event loops a client library can fail differently on: uvloop, which uvicorn (and so
# ``tokensmith serve``) picks when it is installed, and asyncio's own. ``on_each_loop``
# (tests/conftest.py) runs a scenario on each.
LOOPS: dict[str, LoopRunner] = {"uvloop": uvloop.run, "asyncio": asyncio.run}


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        # Bound for the proxy's whole life, listening or not: while cut, connections to it are
        # refused by the kernel and no other socket can take the port.
        self._sock = listening_socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = int(self._sock.getsockname()[1])
        self.connections = 0  # accepted so far, for tests that check reconnection
        # Chunks relayed towards the service: with a request-reply protocol, one per round
        # trip (asyncpg and redis-py write each message, or pipelined batch, at once).
        self.sent = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._flowing: asyncio.Event | None = None
        self._delay = 0.0
        self._thread.start()
        self._call(self._setup())

    # -- what a test switches ------------------------------------------------------------------

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._call(self._cut())

    def reset(self) -> None:
        """Reset every open connection; new ones are relayed as before."""
        self._call(self._reset_open())

    def partition(self) -> None:
        """Deliver nothing either way, on open and new connections alike, without an error."""
        self._call(self._set_flowing(False))

    def latency(self, seconds: float) -> None:
        """Delay every chunk by ``seconds`` in each direction (0: none)."""
        self._delay = seconds

    def heal(self) -> None:
        """A plain relay again: listening, delivering, no added latency."""
        self._delay = 0.0
        self._call(self._heal())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        if self._sock.fileno() != -1:
            self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- the relay, on the proxy's own loop ----------------------------------------------------

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    async def _setup(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, sock=self._sock)

    async def _cut(self) -> None:
        await self._reset_open()
        if self._server is not None:
            self._server.close()  # closes the listening socket too
            await self._server.wait_closed()
            self._server = None
            # Bound again at once, never listening: connections are refused, and the port
            # stays this proxy's (ports of the tests' slice are never handed out by the kernel).
            self._sock = _bound_again(self.port)

    async def _reset_open(self) -> None:
        for writer in list(self._open):
            _abort_with_reset(writer)
        self._open.clear()

    async def _set_flowing(self, flowing: bool) -> None:
        assert self._flowing is not None
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _heal(self) -> None:
        await self._set_flowing(True)
        await self._listen()

    async def _shutdown(self) -> None:
        self._server = None
        await self._reset_open()
        assert self._flowing is not None
        self._flowing.set()  # frees relays waiting on a partition, which then find no peer

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(writer)
        assert self._flowing is not None
        await self._flowing.wait()  # a connection made during a partition hangs, half-open
        if writer not in self._open:
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _abort_with_reset(writer)
            self._open.discard(writer)
            return
        self._open.add(up_writer)

        async def pipe(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, upstream: bool
        ) -> None:
            try:
                while data := await source.read(65536):
                    self.sent += upstream
                    assert self._flowing is not None
                    await self._flowing.wait()
                    if self._delay:
                        await asyncio.sleep(self._delay)
                    if sink not in self._open:
                        return
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if sink in self._open:
                    sink.transport.abort()
                    self._open.discard(sink)

        await asyncio.gather(
            pipe(reader, up_writer, upstream=True), pipe(up_reader, writer, upstream=False)
        )


def _abort_with_reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN, as a peer that crashed or a firewall would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _bound_again(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextmanager
def fault_proxy(upstream_port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream_port)
    try:
        yield proxy
    finally:
        proxy.close()
