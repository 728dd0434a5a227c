"""The optional automatic responses to anomalies, provoked over HTTP (audit/responses.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.apikeys.test_http import bearer, check, create
from tests.oauth.browser import Browser
from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_audit_events import events
from tests.oauth.test_authorization import auth_url, exchange, refresh
from tests.support import ServerThread
from tokensmith.oauth.clients import NewClient
from tokensmith.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "anomaly_network_history": 3,
            "anomaly_spike_factor": 3.0,
            "anomaly_spike_minimum": 5,
            "anomaly_spike_period": 2,
            "anomaly_spike_history": 2,
            "anomaly_spike_action": "throttle",
            "anomaly_new_network_action": "reauthenticate",
            "anomaly_throttle": 30,
        }
    )


def eventually(probe: Callable[[], httpx.Response], status: int) -> httpx.Response:
    """The first answer with ``status`` within 10 s (a response runs off the request path)."""
    deadline = time.monotonic() + 10
    while True:
        answer = probe()
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_a_volume_spike_holds_the_client_and_the_key(
    http: httpx.Client, admin_token: str, register: Registrar, settings: Settings
) -> None:
    spiky = register(NewClient("spiky", grant_types=("client_credentials",), scope="api:read"))
    assert spiky.secret is not None
    key = create(http, admin_token, name="spiky")

    def token() -> httpx.Response:
        form = {"grant_type": "client_credentials", "scope": "api:read"}
        return http.post("/token", data=form, auth=(spiky.client_id, spiky.secret or ""))

    for _ in range(3):  # a quiet baseline: one use per 2 s period
        assert token().status_code == 200
        assert check(http, key["key"]).status_code == 200
        time.sleep(2.05)
    for _ in range(6):  # then a burst far above it
        token()
        check(http, key["key"])

    held = eventually(token, 429)
    assert held.status_code == 429 and 1 <= int(held.headers["retry-after"]) <= 30
    refused = eventually(lambda: check(http, key["key"]), 429)
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 30

    stored = events(settings, {"anomaly.response"})
    responses = {e.detail["identity"]: e.detail for e in stored if e.event == "anomaly.response"}
    assert responses[f"client:{spiky.client_id}"]["action"] == "throttle"
    assert responses[f"key:{key['key_id']}"] == {
        "rule": "volume_spike",
        "identity": f"key:{key['key_id']}",
        "action": "throttle",
        "seconds": 30,
    }

    # An operator lifts the hold like any lockout.
    cleared = http.post(
        "/admin/lockouts/clear",
        json={"client": spiky.client_id, "key": key["key_id"]},
        headers=bearer(admin_token),
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["cleared"] == {"client": spiky.client_id, "key": key["key_id"]}
    assert token().status_code == 200
    assert check(http, key["key"]).status_code == 200


def test_a_user_on_a_new_network_signs_in_again(
    server: ServerThread,
    http: httpx.Client,
    web_app: Registered,
    alice: str,
    settings: Settings,
) -> None:
    url, verifier = auth_url(server, web_app)
    code = Browser(server.base_url).authorize(url).query["code"]
    current = exchange(http, web_app, code, verifier).json()["refresh_token"]
    for _ in range(2):  # three uses from one place make a history
        answer = refresh(http, web_app, current)
        assert answer.status_code == 200
        current = answer.json()["refresh_token"]

    elsewhere = httpx.Client(
        base_url=server.base_url, headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    )
    with elsewhere:
        answer = refresh(elsewhere, web_app, current)
    assert answer.status_code == 200  # the alert follows the request; it does not block it
    latest = answer.json()["refresh_token"]

    denied = eventually(lambda: refresh(http, web_app, latest), 400)
    assert denied.status_code == 400 and denied.json()["error"] == "invalid_grant"

    stored = events(settings, {"anomaly.response"})
    response = next(e for e in stored if e.event == "anomaly.response")
    assert response.subject is not None and response.detail["action"] == "reauthenticate"
    assert response.detail["families"] == 1 and response.detail["sessions"] == 1
