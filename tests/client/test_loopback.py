"""The loopback redirect listener (RFC 8252 §7.3, §8.3): 127.0.0.1 on an ephemeral port, one
GET /callback with this sign-in's state, nothing else; a time limit; a repeated parameter refused;
forged answers, other Hosts (DNS rebinding) and slow connections never cost the real answer."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tokensmith.client import FileStore, LoginError, ServerMetadata, login
from tokensmith.client.loopback import LoopbackListener


def test_one_callback_only_and_nothing_else() -> None:
    with LoopbackListener("s1") as listener:
        assert listener.redirect_uri == f"http://127.0.0.1:{listener.port}/callback"
        base = f"http://127.0.0.1:{listener.port}"
        assert httpx.get(base + "/other?code=x").status_code == 404
        assert httpx.post(base + "/callback", data={"code": "x"}).status_code == 501
        first = httpx.get(base + "/callback?code=c1&state=s1")
        assert first.status_code == 200 and "close this window" in first.text
        assert first.headers["cache-control"] == "no-store"
        assert httpx.get(base + "/callback?code=c2&state=s1").status_code == 409
        assert listener.wait(1) == {"code": "c1", "state": "s1"}


def test_a_repeated_parameter_is_refused() -> None:
    with LoopbackListener("s") as listener:
        httpx.get(f"{listener.redirect_uri}?code=a&code=b&state=s")
        with pytest.raises(LoginError, match="repeats a parameter"):
            listener.wait(1)


def test_the_listener_is_on_loopback_only() -> None:
    with LoopbackListener("s") as listener:
        host = listener._server.server_address[0]
        assert host == "127.0.0.1"


def test_a_forged_answer_sent_first_is_refused_and_the_real_one_still_arrives() -> None:
    with LoopbackListener("the-state") as listener:
        uri = listener.redirect_uri
        for forged in ("?code=evil&state=guess", "?code=evil", "?code=evil&state=the-stat",
                       "?code=evil&state=the-state&state=x", ""):  # fmt: skip
            answer = httpx.get(uri + forged)
            assert answer.status_code == 400 and "not for this sign-in" in answer.text
        assert httpx.get(uri + "?code=real&state=the-state").status_code == 200
        assert listener.wait(1) == {"code": "real", "state": "the-state"}


def test_code_and_state_in_a_fragment_are_not_an_answer() -> None:
    with (
        LoopbackListener("s") as listener,
        socket.create_connection(("127.0.0.1", listener.port)) as raw,
    ):
        raw.sendall(f"GET /callback#code=c&state=s HTTP/1.1\r\nHost: 127.0.0.1:{listener.port}\r\n"
                    "Connection: close\r\n\r\n".encode())  # fmt: skip
        assert raw.recv(4096).startswith(b"HTTP/1.0 400")
        with pytest.raises(LoginError, match="no answer"):
            listener.wait(0.1)


@pytest.mark.parametrize("host", ["evil.example", "localhost", "127.0.0.1", "evil.example:{port}"])
def test_a_request_for_another_host_is_refused_dns_rebinding(host: str) -> None:
    with LoopbackListener("s") as listener:
        answer = httpx.get(listener.redirect_uri + "?code=c&state=s",
                           headers={"host": host.format(port=listener.port)})  # fmt: skip
        assert answer.status_code == 400 and answer.text == "wrong host"
        with pytest.raises(LoginError, match="no answer"):
            listener.wait(0.1)


def test_a_slow_connection_does_not_block_the_browsers_answer() -> None:
    with (
        LoopbackListener("s") as listener,
        socket.create_connection(("127.0.0.1", listener.port)) as slow,
    ):
        slow.sendall(b"GET /callback?code=evil")  # and never the rest of the request line
        time.sleep(0.1)
        started = time.monotonic()
        answer = httpx.get(listener.redirect_uri + "?code=c&state=s", timeout=5)
        assert answer.status_code == 200 and time.monotonic() - started < 2
        assert listener.wait(1) == {"code": "c", "state": "s"}
    assert time.monotonic() - started < 3  # closing does not wait for the slow connection


def test_no_answer_from_the_browser_times_out_and_stores_nothing(tmp_path: Path) -> None:
    metadata = ServerMetadata(issuer="https://auth.example.com",
                              token_endpoint="https://auth.example.com/token",
                              authorization_endpoint="https://auth.example.com/authorize")  # fmt: skip
    opened = threading.Event()

    def opener(url: str) -> bool:
        opened.set()
        return True  # the browser opened, and the person went away

    store = FileStore(tmp_path / "sessions")
    with httpx.Client() as http, pytest.raises(LoginError, match="no answer from the browser"):
        login(metadata, "cli", store, opener=opener, timeout=0.2, http=http, home=tmp_path)
    assert opened.is_set() and not (tmp_path / "sessions").exists()
