"""The device authorization grant (RFC 8628) through real HTTP against a running server: the
device asks, polls, the person signs in at /device and decides, the device gets its tokens."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.oauth.conftest import Registered, Registrar
from tests.support import ServerThread, approve_device_code
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.device_authorization import DEVICE_CODE_GRANT
from tokensmith.oauth.user_codes import USER_CODE_ALPHABET
from tokensmith.settings import Settings

PASSWORD = "correct horse battery"
_SHOWN = re.compile(rf"[{USER_CODE_ALPHABET}]{{4}}-[{USER_CODE_ALPHABET}]{{4}}")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A one-second interval: the server's clock is real, and a test waits it out (protocol
    tests on a frozen clock cover slow_down and expiry: tests/oauth/test_device_code.py)."""
    return settings.model_copy(update={"device_poll_interval": 1})


@pytest.fixture
def tv_app(register: Registrar) -> Registered:
    """A public app on a device without a browser: the device grant, with refresh tokens."""
    return register(
        NewClient(
            "Living Room TV",
            is_public=True,
            grant_types=(DEVICE_CODE_GRANT, "refresh_token"),
            scope="openid profile api:read",
        )
    )


def start(http: httpx.Client, client_id: str, **extra: str) -> dict[str, object]:
    response = http.post("/device_authorization", data={"client_id": client_id, **extra})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


def poll_after_interval(http: httpx.Client, client_id: str, device_code: object) -> httpx.Response:
    time.sleep(1.05)  # the interval (1 s) since the last poll, counted in whole seconds
    return poll(http, client_id, device_code)


def poll(http: httpx.Client, client_id: str, device_code: object) -> httpx.Response:
    return http.post(
        "/token",
        data={
            "grant_type": DEVICE_CODE_GRANT,
            "device_code": str(device_code),
            "client_id": client_id,
        },
    )


def test_the_whole_flow_gives_the_device_its_tokens(
    http: httpx.Client, server: ServerThread, tv_app: Registered, alice: str
) -> None:
    body = start(http, tv_app.client_id, scope="openid api:read")
    assert _SHOWN.fullmatch(str(body["user_code"]))
    assert body["verification_uri"] == f"{server.base_url}/device"
    assert (
        body["verification_uri_complete"]
        == f"{server.base_url}/device?user_code={body['user_code']}"
    )
    assert body["expires_in"] == 600
    assert body["interval"] == 1
    assert str(body["device_code"]).startswith("tsdc_")

    pending = poll(http, tv_app.client_id, body["device_code"])
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"

    done = approve_device_code(server.base_url, str(body["user_code"]), "alice", PASSWORD)
    assert "connected" in done.text

    tokens = poll_after_interval(http, tv_app.client_id, body["device_code"])
    assert tokens.status_code == 200, tokens.text
    issued = tokens.json()
    assert issued["token_type"] == "Bearer"
    assert issued["scope"] == "api:read openid"
    assert issued["refresh_token"].startswith("tsrt_")
    assert "id_token" in issued
    userinfo = http.get("/userinfo", headers={"authorization": f"Bearer {issued['access_token']}"})
    assert userinfo.json()["sub"] == alice
