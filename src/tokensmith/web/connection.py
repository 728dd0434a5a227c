"""One HTTP/1.1 connection, with limits on what a client may make it wait for or hold in memory.

Uvicorn's httptools protocol buffers a header block without limit and waits for headers and
bodies forever, so a few thousand dribbling sockets hold every slot of ``limit_concurrency``
(SECURITY.md cases 42 and 61). This subclass adds, at the protocol layer, before the app runs:

- a cap on the request line and headers, counted as the bytes arrive: once a request's header
  block passes ``max_header_bytes`` the connection gets a 431 and is closed, having buffered at
  most the cap plus one read (64 KiB), however much the client still means to send;
- a deadline for the header block, from the connection's (or the request's) first byte to its
  last header: a connection that sends nothing, or one byte a second, gets a 408 and is closed;
- an idle timeout between pieces of a body and a deadline for the whole body. While the app is
  not reading (flow control paused the socket) the client is not the one waiting, so the clocks
  only cut a client that is itself slow.

Its writes go through ``CoalescingTransport``: a response's head and body leave in one ``send()``.

The parser is llhttp (through httptools), uvicorn's fastest; granian was considered and not
taken (docs/operations.md). The timers are armed only when a read ends inside a header block
or a body, so a request that arrives in one piece pays no timer.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

__all__ = [
    "CoalescingTransport",
    "LimitedHttpToolsProtocol",
    "ProxyLimits",
    "ReadLimits",
    "limited_protocol",
    "proxy_limits",
]


@dataclass(frozen=True, slots=True)
class ReadLimits:
    max_header_bytes: int = 16 * 1024
    header_timeout: float = 10.0
    body_idle_timeout: float = 10.0
    body_timeout: float = 60.0


class ProxyLimits(Protocol):
    """What a proxy's file (the gateway's, the BFF's) says about the connections it reads."""

    @property
    def max_header_bytes(self) -> int: ...
    @property
    def header_timeout(self) -> float: ...
    @property
    def client_timeout(self) -> float: ...
    @property
    def body_timeout(self) -> float: ...


def proxy_limits(config: ProxyLimits) -> ReadLimits:
    """A proxy's read limits from its file; a stalled body waits ``client_timeout``."""
    return ReadLimits(
        max_header_bytes=config.max_header_bytes,
        header_timeout=config.header_timeout,
        body_idle_timeout=config.client_timeout,
        body_timeout=config.body_timeout,
    )


class _Refused(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[ReadLimits] = ReadLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True  # between a message's first byte (or none) and its headers
        self._header_bytes = 0
        self._trailer_bytes = 0  # read since the last chunk began and no body came: trailers
        self._chunk_open = False  # between a chunk's size line and its end
        self._body_in_read = False  # the current read delivered body bytes
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_pending = False
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_deadline = 0.0
        self._body_seen = 0.0  # loop time of the last piece of body
        self._began = self._completed = False  # during the current read
        self._deferred: tuple[int, str] | None = None  # a refusal waiting for earlier answers

    # -- the connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))
        # A connection that never sends a byte is a slot held too: the header clock runs now.
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deferred is not None:  # the parser stopped at the refused request
            return
        self._unset_keepalive_if_required()
        self._began = self._completed = self._body_in_read = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _Refused):
                self._refuse(exc.__context__.status, exc.__context__.description)
                return
            self.send_400_response("the request is not valid HTTP/1.1")
            return
        except httptools.HttpParserUpgrade:  # as uvicorn does: served as plain HTTP
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            self.send_400_response("the request is not valid HTTP/1.1")
            return
        if not self.transport.is_closing():
            self._after_read(len(data))

    def _after_read(self, size: int) -> None:
        if self._awaiting_headers:
            # A read that both finished a request and began the next one cannot be split;
            # the exact count at the end of the headers catches what this leaves out.
            if not (self._began and self._completed):
                self._header_bytes += size
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse(431, "the request headers are too large")
                return
            if self._header_timer is None:
                self._arm_header_timer()
        elif self._body_pending and self._trailers_too_large(size):
            self._refuse(431, "the request trailers are too large")
        elif self._body_pending and self._body_timer is None:
            now = self.loop.time()
            self._body_seen = now
            self._body_deadline = now + self.limits.body_timeout
            self._schedule_body_check(now + self.limits.body_idle_timeout)

    def _trailers_too_large(self, size: int) -> bool:
        """Whether a chunked body's trailer section passed the header cap. The parser buffers a
        trailer field until its line ends, and the body clocks allow a long one, so reads are
        counted from the last chunk's size line (``0``) on, as header blocks are. A read that
        also carried body bytes or the request's own headers is not, so the bound is the cap
        plus one read."""
        if self._chunk_open and not self._body_in_read and not self._began:
            self._trailer_bytes += size
        return self._trailer_bytes > self.limits.max_header_bytes

    # -- parser callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._began = True
        self._awaiting_headers = True
        self._header_bytes = 0
        self._trailer_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._awaiting_headers:
            super().on_header(name, value)
        # Otherwise a trailer field of a chunked body (RFC 9112 §7.1.2). Uvicorn would append
        # it to the request's headers, which the app has already read: nothing here reads
        # trailers, so they are dropped, never merged (their size is capped in _after_read).

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            raise _Refused(431, "the request headers are too large")
        self._awaiting_headers = False
        self._cancel(self._header_timer)
        self._header_timer = None
        self._body_pending = True
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_seen = self.loop.time()
        self._body_in_read = True
        self._trailer_bytes = 0
        super().on_body(body)

    def on_chunk_header(self) -> None:
        self._chunk_open = True

    def on_chunk_complete(self) -> None:
        self._chunk_open = False

    def on_message_complete(self) -> None:
        self._completed = True
        self._body_pending = False
        self._cancel(self._body_timer)
        self._body_timer = None
        super().on_message_complete()

    # -- timers ------------------------------------------------------------------------------

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._headers_late)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            if self._header_bytes == 0:
                self.transport.close()  # it never said anything: nothing to answer
                return
            self._refuse(408, "the request headers arrived too slowly")

    def _schedule_body_check(self, when: float) -> None:
        self._body_timer = self.loop.call_at(when, self._check_body)

    def _check_body(self) -> None:
        self._body_timer = None
        if not self._body_pending or self.transport.is_closing():
            return
        now = self.loop.time()
        cycle = self.cycle
        if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
            # The app is behind (or has not asked for the body yet), not the client: wait, and
            # leave the client at least one idle period once it may send again.
            self._body_seen = now
            self._body_deadline = max(self._body_deadline, now + self.limits.body_idle_timeout)
            self._schedule_body_check(now + self.limits.body_idle_timeout)
            return
        idle_until = self._body_seen + self.limits.body_idle_timeout
        if now >= idle_until or now >= self._body_deadline:
            self._refuse(408, "the request body arrived too slowly")
            return
        self._schedule_body_check(min(idle_until, self._body_deadline))

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            self._cancel(timer)
        self._header_timer = self._body_timer = None

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()

    # -- answers -----------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, msg)

    def _refuse(self, status: int, description: str) -> None:
        """An RFC 6749-shaped JSON answer, unless the app already began one; then close."""
        self._cancel_timers()
        self._body_pending = False
        cycle = self.cycle
        if self._awaiting_headers and cycle is not None and not cycle.response_complete:
            # A pipelined request is refused while earlier ones are still answered: they finish
            # first, and nothing more is read meanwhile (on_response_complete sends this).
            self._deferred = (status, description)
            self.flow.pause_reading()
            return
        if self._awaiting_headers or not cycle.response_started:
            self._write_refusal(status, description)
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's later sends go nowhere
            cycle.message_event.set()
        self.transport.close()

    def on_response_complete(self) -> None:
        if self._deferred is not None and not self.pipeline:
            self.server_state.total_requests += 1
            self._write_refusal(*self._deferred)
            self.transport.close()
            return
        super().on_response_complete()

    def _write_refusal(self, status: int, description: str) -> None:
        body = json.dumps({"error": "invalid_request", "error_description": description})
        head = (
            b"content-type: application/json\r\ncache-control: no-store\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        self.transport.write(STATUS_LINE[status] + head + body.encode())


class CoalescingTransport(asyncio.Transport):
    """The socket's transport, with the writes of one turn of the event loop sent as one.

    Uvicorn writes a response's head and its body as two ``send()`` calls. On a keep-alive
    connection each is a system call and a TCP segment, with the receiver woken for each:
    about a sixth of a token request's CPU on loopback went to the second one. Writes made
    in the same turn (a response's head and body always are) leave together at its end.
    Flow control still holds: a write that brings the pending bytes to ``FLUSH_AT`` goes out at
    once, so the real transport's buffer limits pause a producer as before.
    """

    FLUSH_AT = 64 * 1024

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= self.FLUSH_AT:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()  # what was written goes out before the connection closes
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._size = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()


def limited_protocol(limits: ReadLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class with these limits, for one process (it is not picklable)."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})
