"""The device flow's polling state machine (RFC 8628 §3.4, §3.5) at the protocol level, on
httpx.MockTransport: authorization_pending, slow_down (5 s more, kept), expired_token,
access_denied, the code's own expiry, and a back-off when the server is unreachable. (The
flow against the real server's device grant is its own test.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tokensmith.client import FileStore, LoginError, ServerMetadata, device_login
from tokensmith.client.device import DEVICE_CODE_GRANT
from tokensmith.core.clock import FrozenClock

ISSUER = "https://auth.example.com"
METADATA = ServerMetadata(
    issuer=ISSUER,
    token_endpoint=f"{ISSUER}/token",
    device_authorization_endpoint=f"{ISSUER}/device_authorization",
)
DEVICE_CODE = "device-code-0123456789abcdef"
REFRESH = "rt-device-0123456789"


class DeviceServer:
    """Answers the device authorization, then each poll with the next of ``answers``."""

    def __init__(self, answers: list[Any], interval: int | None = 2, expires_in: int = 600):
        self.answers = list(answers)
        self.interval, self.expires_in = interval, expires_in
        self.polls: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if request.url.path == "/device_authorization":
            assert form == {"client_id": "cli", "scope": "api:read"}
            body = {"device_code": DEVICE_CODE, "user_code": "WDJB-MJHT",
                    "verification_uri": f"{ISSUER}/device", "expires_in": self.expires_in,
                    "verification_uri_complete": f"{ISSUER}/device?user_code=WDJB-MJHT"}  # fmt: skip
            if self.interval is not None:
                body["interval"] = self.interval
            return httpx.Response(200, json=body)
        assert request.url.path == "/token"
        self.polls.append(form)
        answer = self.answers.pop(0)
        if isinstance(answer, int):
            return httpx.Response(answer)
        if isinstance(answer, str):
            return httpx.Response(400, json={"error": answer})
        return httpx.Response(200, json=answer)


def run(server: DeviceServer, tmp_path: Path) -> tuple[Any, list[float], list[str]]:
    clock = FrozenClock()
    slept: list[float] = []
    said: list[str] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    store = FileStore(tmp_path / "sessions")
    with httpx.Client(transport=httpx.MockTransport(server)) as http:
        session = device_login(METADATA, "cli", store, scope="api:read", http=http, clock=clock,
                               home=tmp_path, notify=said.append, sleep=sleep)  # fmt: skip
    return session, slept, said


GRANTED = {"access_token": "at-0123", "token_type": "Bearer", "expires_in": 300,
           "refresh_token": REFRESH, "scope": "api:read"}  # fmt: skip


def test_pending_then_slow_down_then_granted(tmp_path: Path) -> None:
    server = DeviceServer(["authorization_pending", "slow_down", "authorization_pending",
                           "slow_down", GRANTED])  # fmt: skip
    session, slept, said = run(server, tmp_path)
    assert slept == [2, 2, 7, 7, 12]  # slow_down adds 5 s, and the new interval holds
    assert said == [f"tokensmith: to sign in, open {ISSUER}/device?user_code=WDJB-MJHT "
                    "(the code is WDJB-MJHT)"]  # fmt: skip
    assert all(poll == {"grant_type": DEVICE_CODE_GRANT, "device_code": DEVICE_CODE,
                        "client_id": "cli"} for poll in server.polls)  # fmt: skip
    assert session.stored.refresh_token == REFRESH
    assert session.access_token().value == "at-0123"
    assert FileStore(tmp_path / "sessions").load(ISSUER, "cli") == session.stored
    assert DEVICE_CODE not in repr(session) and "WDJB" not in json.dumps(session.stored.claims)


def test_default_interval_is_five_seconds(tmp_path: Path) -> None:
    _, slept, _ = run(DeviceServer(["authorization_pending", GRANTED], interval=None), tmp_path)
    assert slept == [5, 5]


@pytest.mark.parametrize(("answer", "message"), [
    ("access_denied", "denied"), ("expired_token", "expired"), ("invalid_grant", "invalid_grant"),
])  # fmt: skip
def test_a_final_refusal_ends_the_sign_in_and_stores_nothing(
    tmp_path: Path, answer: str, message: str
) -> None:
    with pytest.raises(Exception, match=message) as refused:
        run(DeviceServer(["authorization_pending", answer]), tmp_path)
    assert getattr(refused.value, "error", None) == answer
    assert not (tmp_path / "sessions").exists()


def test_the_code_expires_while_pending(tmp_path: Path) -> None:
    with pytest.raises(LoginError, match="expired before"):
        run(DeviceServer(["authorization_pending"] * 10, interval=5, expires_in=12), tmp_path)


def test_an_unreachable_server_is_polled_more_slowly(tmp_path: Path) -> None:
    _, slept, _ = run(DeviceServer([503, 503, "authorization_pending", GRANTED]), tmp_path)
    assert slept == [2, 4, 8, 8]


def test_an_incomplete_device_answer_is_refused(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"device_code": "x", "user_code": "A\x1b[2J",
                                         "verification_uri": f"{ISSUER}/device",
                                         "expires_in": 60})  # fmt: skip

    with (
        httpx.Client(transport=httpx.MockTransport(answer)) as http,
        pytest.raises(LoginError, match="user_code"),
    ):
        device_login(METADATA, "cli", FileStore(tmp_path), scope="api:read", http=http)


def test_an_http_verification_uri_is_refused(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"device_code": "x", "user_code": "ABCD",
                                         "verification_uri": "http://evil.example/device",
                                         "expires_in": 60})  # fmt: skip

    with (
        httpx.Client(transport=httpx.MockTransport(answer)) as http,
        pytest.raises(Exception, match="https"),
    ):
        device_login(METADATA, "cli", FileStore(tmp_path), scope="api:read", http=http)


def test_no_device_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    without = ServerMetadata(issuer=ISSUER, token_endpoint=f"{ISSUER}/token")
    with httpx.Client() as http, pytest.raises(LoginError, match="no device authorization"):
        device_login(without, "cli", FileStore(tmp_path), scope="api:read", http=http)


def test_the_browser_flow_falls_back_to_the_device_flow_without_a_browser(tmp_path: Path) -> None:
    from tokensmith.client import login

    metadata = ServerMetadata(**{**METADATA.__dict__, "authorization_endpoint": f"{ISSUER}/a"})
    opened: list[str] = []
    said: list[str] = []
    server = DeviceServer([GRANTED], interval=1)
    with httpx.Client(transport=httpx.MockTransport(server)) as http:
        session = login(metadata, "cli", FileStore(tmp_path / "s"), scope="api:read",
                        opener=lambda url: opened.append(url) is not None, http=http,
                        notify=said.append, home=tmp_path)  # fmt: skip
    assert len(opened) == 1 and opened[0].startswith(f"{ISSUER}/a?response_type=code&")
    assert said[0] == "tokensmith: no browser could be opened; signing in with a code instead"
    assert "WDJB-MJHT" in said[1] and session.stored.refresh_token == REFRESH


def test_an_unprintable_verification_uri_is_refused(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"device_code": "x", "user_code": "ABCD",
                                         "verification_uri": f"{ISSUER}/device\x1b]8;;evil",
                                         "expires_in": 60})  # fmt: skip

    with (
        httpx.Client(transport=httpx.MockTransport(answer)) as http,
        pytest.raises(LoginError, match="unprintable"),
    ):
        device_login(METADATA, "cli", FileStore(tmp_path), scope="api:read", http=http)
