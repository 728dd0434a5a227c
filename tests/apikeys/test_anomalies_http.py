"""Each anomaly rule, provoked over HTTP: an audit event, a webhook, a metric."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.apikeys.conftest import WEBHOOK_SECRET, Receiver
from tests.apikeys.test_http import bearer, check, create
from tests.oauth.browser import Browser
from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_audit_events import events
from tests.oauth.test_authorization import auth_url, exchange, refresh
from tests.support import METRICS_AUTH, ServerThread
from tokensmith.apikeys.format import generate_api_key
from tokensmith.oauth.clients import NewClient
from tokensmith.settings import Settings


@pytest.fixture
def settings(settings: Settings, receiver: Receiver) -> Settings:
    return settings.model_copy(
        update={
            "webhook_urls": receiver.url,
            "webhook_secret": SecretStr(WEBHOOK_SECRET),
            "anomaly_burst_failures": 5,
            "anomaly_network_history": 3,
            "anomaly_spike_factor": 3.0,
            "anomaly_spike_minimum": 5,
            "anomaly_spike_period": 2,
            "anomaly_spike_history": 2,
        }
    )


def alerts(receiver: Receiver) -> dict[str, dict[str, Any]]:
    found = {}
    for _, body in receiver.received:
        message = json.loads(body)
        found[message["event"]] = message["data"]
    return found


def test_every_rule_fires(
    server: ServerThread,
    http: httpx.Client,
    admin_token: str,
    register: Registrar,
    web_app: Registered,
    alice: str,
    receiver: Receiver,
    settings: Settings,
) -> None:
    # refresh_reuse: a rotated refresh token comes back after its successor was used (a
    # duplicate right after the rotation would get the successor: docs/oauth.md).
    url, verifier = auth_url(server, web_app)
    code = Browser(server.base_url).authorize(url).query["code"]
    first = exchange(http, web_app, code, verifier).json()["refresh_token"]
    second = refresh(http, web_app, first)
    assert second.status_code == 200
    assert refresh(http, web_app, second.json()["refresh_token"]).status_code == 200
    assert refresh(http, web_app, first).status_code == 400

    # failure_burst: five made-up keys from one address (under its lockout of 30).
    for _ in range(5):
        assert check(http, generate_api_key("test").text).status_code == 401

    # new_network: a key used from 10.0.0.0/24 three times, then from 192.0.2.0/24, as a
    # gateway reports it.
    created = create(http, admin_token)
    gateway = register(
        NewClient("gateway", grant_types=("client_credentials",), may_vouch_client_ip=True)
    )
    assert gateway.secret is not None
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "192.0.2.7"):
        vouched = check(
            http,
            created["key"],
            data={"client_ip": address},
            auth=(gateway.client_id, gateway.secret),
        )
        assert vouched.status_code == 200

    # volume_spike: a quiet key (one use per 2 s period), then twelve uses at once.
    quiet = create(http, admin_token, name="quiet")
    for _ in range(3):
        assert check(http, quiet["key"]).status_code == 200
        time.sleep(2.05)
    for _ in range(12):
        assert check(http, quiet["key"]).status_code == 200

    # revoked_credential_used: a revoked key presented again.
    http.post(f"/admin/api-keys/{created['key_id']}/revoke", headers=bearer(admin_token))
    assert check(http, created["key"]).status_code == 401

    rules = [
        "refresh_reuse",
        "failure_burst",
        "new_network",
        "volume_spike",
        "revoked_credential_used",
    ]
    stored = events(settings, {f"anomaly.{rule}" for rule in rules})
    by_rule = {e.event: e for e in stored if e.event.startswith("anomaly.")}
    assert by_rule["anomaly.failure_burst"].detail["identity"] == "address:127.0.0.1"
    assert by_rule["anomaly.new_network"].detail["identity"] == f"key:{created['key_id']}"
    assert "192.0.2.0/24" in by_rule["anomaly.new_network"].detail["summary"]
    assert by_rule["anomaly.volume_spike"].detail["identity"] == f"key:{quiet['key_id']}"
    assert (
        by_rule["anomaly.revoked_credential_used"].detail["identity"] == f"key:{created['key_id']}"
    )
    assert by_rule["anomaly.refresh_reuse"].detail["identity"] == f"client:{web_app.client_id}"

    deadline = time.monotonic() + 15
    while (
        not {f"anomaly.{rule}" for rule in rules} <= set(alerts(receiver))
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert {f"anomaly.{rule}" for rule in rules} <= set(alerts(receiver))
    metrics = http.get("/metrics", headers=METRICS_AUTH).text
    for rule in rules:
        assert f'tokensmith_anomalies_total{{rule="{rule}"}}' in metrics
    for event in stored:  # the alerts name keys by id, never by value
        assert created["key"] not in repr(event) and quiet["key"] not in repr(event)
