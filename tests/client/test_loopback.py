"""The loopback redirect listener (RFC 8252 §7.3): 127.0.0.1 on an ephemeral port, exactly one
GET /callback, nothing else; a time limit; a repeated parameter refused."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tokensmith.client import FileStore, LoginError, ServerMetadata, login
from tokensmith.client.loopback import LoopbackListener


def test_one_callback_only_and_nothing_else() -> None:
    with LoopbackListener() as listener:
        assert listener.redirect_uri == f"http://127.0.0.1:{listener.port}/callback"
        base = f"http://127.0.0.1:{listener.port}"
        assert httpx.get(base + "/other?code=x").status_code == 404
        assert httpx.post(base + "/callback", data={"code": "x"}).status_code == 501
        first = httpx.get(base + "/callback?code=c1&state=s1")
        assert first.status_code == 200 and "close this window" in first.text
        assert first.headers["cache-control"] == "no-store"
        assert httpx.get(base + "/callback?code=c2&state=s2").status_code == 409
        assert listener.wait(1) == {"code": "c1", "state": "s1"}


def test_a_repeated_parameter_is_refused() -> None:
    with LoopbackListener() as listener:
        httpx.get(f"{listener.redirect_uri}?code=a&code=b&state=s")
        with pytest.raises(LoginError, match="repeats a parameter"):
            listener.wait(1)


def test_the_listener_is_on_loopback_only() -> None:
    with LoopbackListener() as listener:
        host = listener._server.server_address[0]
        assert host == "127.0.0.1"


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
