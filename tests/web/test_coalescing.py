"""web/connection.py's CoalescingTransport: one send per turn of the event loop, nothing lost,
nothing reordered, and flow control still reaches the real transport."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support import ServerThread
from tokensmith.settings import Settings
from tokensmith.web.connection import CoalescingTransport

pytestmark = pytest.mark.anyio


class Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = self.aborted = self.paused = False

    def write(self, data: Any) -> None:
        self.sent.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def pause_reading(self) -> None:
        self.paused = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def coalescing() -> tuple[CoalescingTransport, Recorder]:
    real = Recorder()
    return CoalescingTransport(real, asyncio.get_running_loop()), real


async def test_writes_of_one_turn_leave_as_one_send_in_order() -> None:
    transport, real = coalescing()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(bytearray(b"body"))
    assert real.sent == []
    assert transport.get_write_buffer_size() == 23
    await asyncio.sleep(0)
    assert real.sent == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert real.sent[1:] == [b"next"]


async def test_close_sends_what_was_written_first() -> None:
    transport, real = coalescing()
    transport.write(b"last answer")
    transport.close()
    assert real.sent == [b"last answer"] and real.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert real.sent == [b"last answer"]


async def test_abort_drops_what_is_pending() -> None:
    transport, real = coalescing()
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert real.sent == [] and real.aborted


async def test_nothing_is_written_to_a_closed_connection() -> None:
    transport, real = coalescing()
    transport.write(b"too late")
    real.closed = True  # the peer went away before the turn ended
    await asyncio.sleep(0)
    assert real.sent == []


async def test_a_large_write_goes_out_at_once_so_flow_control_sees_it() -> None:
    transport, real = coalescing()
    transport.write(b"head")
    transport.write(b"x" * CoalescingTransport.FLUSH_AT)
    assert real.sent == [b"head" + b"x" * CoalescingTransport.FLUSH_AT]


async def test_the_rest_is_the_real_transports() -> None:
    transport, real = coalescing()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
    transport.pause_reading()
    assert real.paused
    assert not transport.is_closing()


def test_responses_over_a_real_connection_arrive_whole(settings: Settings) -> None:
    """Requests one after another on a keep-alive connection each get their whole answer."""
    with ServerThread(settings) as server, httpx.Client(base_url=server.base_url) as http:
        for _ in range(20):
            response = http.get("/jwks")
            assert response.status_code == 200
            assert response.json()["keys"]
            assert response.headers["x-content-type-options"] == "nosniff"
