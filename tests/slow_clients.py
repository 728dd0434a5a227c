"""Hostile HTTP/1.1 clients on raw sockets: header floods and dribblers (SECURITY.md 42, 61).

Shared by the server's and the gateway's transport tests. Every socket has a timeout and is
closed on the way out; nothing waits longer than the limit under test plus a margin.
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Outcome", "dribble", "flood_headers", "open_socket", "read_answer", "read_response"]


@dataclass(frozen=True)
class Outcome:
    sent: int  # bytes the client got out before the server cut it off
    answer: bytes  # what the server said, if anything arrived before the close
    seconds: float  # from the first byte to the cut


def open_socket(base_url: str, timeout: float = 10) -> socket.socket:
    parts = urlsplit(base_url)
    return socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout)


def read_answer(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything until the server closes (or the timeout), tolerating a reset."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionError, TimeoutError):
        pass
    return b"".join(chunks)


def read_response(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything until the first final response is complete by its Content-Length (the server
    may keep the connection open for another request), the server closes, or the timeout."""
    sock.settimeout(timeout)
    data = b""
    try:
        while not _complete(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionError, TimeoutError):
        pass
    return data


def _complete(data: bytes) -> bool:
    rest = data
    while True:
        head, found, rest = rest.partition(b"\r\n\r\n")
        if not found:
            return False
        if not head.startswith(b"HTTP/1.1 1"):  # past the interim answers (100 Continue)
            break
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(rest) >= int(value)
    return False  # no length: the answer ends when the connection does


def _closed_or_answered(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def flood_headers(base_url: str, total: int, piece: int = 8192, pause: float = 0.001) -> Outcome:
    """One header value of ``total`` bytes, sent in pieces, until the server stops listening."""
    started = time.monotonic()
    sent = 0
    with open_socket(base_url) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Flood: ")
            while sent < total and not _closed_or_answered(sock):
                sock.sendall(b"a" * piece)
                sent += piece
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return Outcome(sent, read_answer(sock), time.monotonic() - started)


def dribble(base_url: str, head: bytes, tail: bytes, every: float, limit: float) -> Outcome:
    """Send ``head`` at once, then ``tail`` one byte every ``every`` seconds, for at most
    ``limit`` seconds or until the server answers or closes."""
    started = time.monotonic()
    sent = 0
    with open_socket(base_url) as sock:
        try:
            sock.sendall(head)
            for byte in tail:
                if _closed_or_answered(sock) or time.monotonic() - started > limit:
                    break
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(every)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_answer(sock, timeout=max(0.1, limit - (time.monotonic() - started)))
        return Outcome(sent, answer, time.monotonic() - started)
