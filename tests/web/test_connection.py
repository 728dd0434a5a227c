"""The server's connections over real sockets: header floods are refused as they arrive, and
dribbling headers or bodies are cut off by the read timeouts (SECURITY.md cases 42, 61)."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from tests.slow_clients import dribble, flood_headers, open_socket, read_answer, read_response
from tests.support import ServerThread
from tokensmith.settings import Settings

MEGABYTE = 1024 * 1024


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerThread]:
    quick = {"header_timeout": 1.0, "body_idle_timeout": 1.0, "body_timeout": 2.5}
    with ServerThread(settings.model_copy(update=quick)) as running:
        yield running


def test_a_megabyte_header_block_is_refused_before_it_is_all_sent(server: ServerThread) -> None:
    outcome = flood_headers(server.base_url, MEGABYTE)
    # Refused at the 16 KiB cap plus at most a read or two, never after buffering the megabyte.
    assert outcome.sent < 256 * 1024, outcome.sent
    assert outcome.answer == b"" or outcome.answer.startswith(b"HTTP/1.1 431"), outcome.answer
    assert httpx.get(server.base_url + "/healthz").status_code == 200


def test_parallel_floods_do_not_grow_memory(server: ServerThread) -> None:
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        floods = [
            threading.Thread(target=flood_headers, args=(server.base_url, 4 * MEGABYTE))
            for _ in range(4)
        ]
        for flood in floods:
            flood.start()
        for flood in floods:
            flood.join(timeout=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Four 4 MB blocks at once; buffered whole they would cost 16 MB and more.
    assert peak - before < 3 * MEGABYTE, peak - before


def test_many_small_headers_over_the_cap_in_one_read_get_431(server: ServerThread) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 200) for i in range(100))
    with open_socket(server.base_url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer
    assert b'"error":"invalid_request"' in answer.replace(b" ", b"")


def test_a_huge_request_line_counts_as_header_bytes(server: ServerThread) -> None:
    with open_socket(server.base_url) as sock:
        sock.sendall(b"GET /healthz?" + b"q" * 40_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_answer(sock).startswith(b"HTTP/1.1 431")


def test_dribblers_are_cut_and_the_server_keeps_serving(server: ServerThread) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
    threads = [
        threading.Thread(target=dribble, args=(server.base_url, head, b"X: " + b"a" * 50, 0.2, 5))
        for _ in range(50)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    assert httpx.get(server.base_url + "/healthz", timeout=5).status_code == 200
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)


def test_headers_dribbled_one_byte_at_a_time_are_cut_off(server: ServerThread) -> None:
    outcome = dribble(
        server.base_url, b"GET /healthz HTTP/1.1\r\nHost: t\r\n", b"X-Slow: " + b"a" * 100, 0.1, 5
    )
    assert outcome.answer.startswith(b"HTTP/1.1 408"), outcome.answer
    assert 0.9 < outcome.seconds < 3, outcome.seconds


def test_a_connection_that_says_nothing_is_closed(server: ServerThread) -> None:
    started = time.monotonic()
    with open_socket(server.base_url) as sock:
        assert read_answer(sock, timeout=5) == b""
    assert 0.9 < time.monotonic() - started < 3


def _post_head(length: int) -> bytes:
    return (
        b"POST /token HTTP/1.1\r\nHost: t\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % length
    )


def test_a_body_that_stops_is_cut_after_the_idle_timeout(server: ServerThread) -> None:
    outcome = dribble(server.base_url, _post_head(100) + b"grant_type=", b"", 0, 5)
    assert outcome.answer.startswith(b"HTTP/1.1 408"), outcome.answer
    assert 0.9 < outcome.seconds < 3, outcome.seconds


def test_a_body_dribbled_under_the_idle_timeout_is_cut_at_the_deadline(
    server: ServerThread,
) -> None:
    outcome = dribble(server.base_url, _post_head(200), b"a" * 200, 0.3, 6)
    assert outcome.answer.startswith(b"HTTP/1.1 408"), outcome.answer
    assert 2.3 < outcome.seconds < 4.5, outcome.seconds


def test_a_chunked_body_that_dribbles_is_cut_too(server: ServerThread) -> None:
    head = (
        b"POST /token HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
    )
    outcome = dribble(server.base_url, head, b"1\r\na\r\n" * 40, 0.05, 6)
    assert outcome.answer.startswith(b"HTTP/1.1 408"), outcome.answer
    assert 2.3 < outcome.seconds < 4.5, outcome.seconds


CHUNKED_HEAD = (
    b"POST /token HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
)


@pytest.mark.parametrize(
    ("first", "piece"),
    [
        (b"X-T: a\r\n", (b"X-T: " + b"a" * 8000 + b"\r\n") * 8),  # many trailer fields
        (b"X-T: ", b"a" * 64_000),  # one that never ends
    ],
    ids=["many", "endless"],
)
def test_a_trailer_flood_after_a_chunked_body_is_refused_as_it_arrives(
    server: ServerThread, first: bytes, piece: bytes
) -> None:
    """Trailer fields come after the header block, where its cap was not counted: uvicorn
    appended them to the request's headers without limit (hundreds of MB in seconds)."""
    sent = 0
    with open_socket(server.base_url) as sock:
        sock.sendall(CHUNKED_HEAD + b"1\r\na\r\n0\r\n" + first)
        try:
            while sent < 32 * MEGABYTE:
                sock.sendall(piece)
                sent += len(piece)
        except OSError:
            pass  # refused and closed while we were still sending
        answer = read_answer(sock)
    assert sent < 4 * MEGABYTE, sent
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert httpx.get(server.base_url + "/healthz").status_code == 200


def test_a_few_trailers_are_allowed_and_never_become_headers(server: ServerThread) -> None:
    body = b"grant_type=client_credentials"
    with open_socket(server.base_url) as sock:
        sock.sendall(
            CHUNKED_HEAD + b"%x\r\n%s\r\n0\r\nAuthorization: Basic Og==\r\n\r\n" % (len(body), body)
        )
        answer = read_response(sock, timeout=5)
    # No credentials came in the header block: a trailer does not add one.
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"client authentication failed" in answer or b"invalid_client" in answer


def test_pipelined_requests_are_answered_and_an_oversized_one_refused(
    server: ServerThread,
) -> None:
    small = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
    with open_socket(server.base_url) as sock:
        sock.sendall(small * 3)
        answers = b""
        while answers.count(b"HTTP/1.1 200") < 3:
            answers += sock.recv(65536)
    big = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    with open_socket(server.base_url) as sock:
        sock.sendall(small + big)
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 431" in answer, answer


def test_expect_100_continue_waits_for_the_app(server: ServerThread) -> None:
    with open_socket(server.base_url) as sock:
        sock.sendall(_post_head(29).replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
        assert sock.recv(100).startswith(b"HTTP/1.1 100")
        sock.sendall(b"grant_type=client_credentials")
        assert read_response(sock, timeout=5).startswith(b"HTTP/1.1 401")


def test_normal_requests_still_pass(server: ServerThread) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        for _ in range(3):  # keep-alive: the timers are per request
            assert http.get("/healthz").status_code == 200
        big = {f"x-h{i}": "v" * 1000 for i in range(12)}  # 12 KB of headers: under the cap
        assert http.get("/healthz", headers=big).status_code == 200
        # A form in pieces, each well inside the idle timeout, is read as usual.
        pieces = iter([b"grant_type=client_", b"credentials"])
        response = http.post(
            "/token",
            content=_slowly(pieces, 0.3),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 401  # no client: the protocol answered, not the transport
        time.sleep(1.5)  # idle between requests is the keep-alive's business, not the header clock
        assert http.get("/healthz").status_code == 200


def _slowly(pieces: Iterator[bytes], pause: float) -> Iterator[bytes]:
    for piece in pieces:
        time.sleep(pause)
        yield piece
