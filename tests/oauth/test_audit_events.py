"""Every token event reaches the audit trail, with its origin and never a token value."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt as pyjwt

from tests.oauth.browser import Browser
from tests.oauth.conftest import Registered
from tests.oauth.test_authorization import auth_url, exchange, refresh, tokens_for
from tests.support import METRICS_AUTH, ServerThread
from tokensmith.audit.events import AuditEvent, AuditQuery
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings


def events(settings: Settings, expected: set[str], timeout: float = 10) -> list[AuditEvent]:
    """The stored events, oldest first, once every expected name is there (they are batched)."""

    async def read() -> list[AuditEvent]:
        services = await open_services(settings)
        try:
            return list(reversed(await services.audit.query(AuditQuery(limit=1000))))
        finally:
            await services.close()

    deadline = time.monotonic() + timeout
    found = asyncio.run(read())
    while not expected <= {e.event for e in found} and time.monotonic() < deadline:
        time.sleep(0.1)
        found = asyncio.run(read())
    assert expected <= {e.event for e in found}, [e.event for e in found]
    return found


def named(found: list[AuditEvent], name: str) -> list[AuditEvent]:
    return [e for e in found if e.event == name]


def test_client_credentials_events(
    http: httpx.Client, machine: Registered, settings: Settings
) -> None:
    assert machine.secret is not None
    issued = http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "api:read"},
        auth=(machine.client_id, machine.secret),
        headers={"user-agent": "audit-test/1.0"},
    )
    token = issued.json()["access_token"]
    http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(machine.client_id, "wrong")
    )
    http.post("/introspect", data={"token": token}, auth=(machine.client_id, machine.secret))
    http.post("/revoke", data={"token": token}, auth=(machine.client_id, machine.secret))
    found = events(
        settings,
        {"token.issued", "token.refused", "token.introspected", "token.revocation_requested"},
    )
    (issue,) = named(found, "token.issued")
    assert issue.client_id == machine.client_id and issue.subject == machine.client_id
    assert issue.detail["grant_type"] == "client_credentials"
    assert issue.detail["scope"] == "api:read"
    assert issue.source_ip == "127.0.0.1" and issue.user_agent == "audit-test/1.0"
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert issue.fingerprint == claims["jti"]
    (refusal,) = named(found, "token.refused")
    assert refusal.outcome == "denied" and refusal.client_id == machine.client_id
    assert refusal.detail["error"] == "invalid_client"
    (inspected,) = named(found, "token.introspected")
    assert inspected.detail == {"active": True} and inspected.client_id == machine.client_id
    for event in found:
        assert token not in repr(event) and machine.secret not in repr(event)
    metrics = http.get("/metrics", headers=METRICS_AUTH).text
    assert 'tokensmith_events_total{event="token.issued",outcome="success",reason=""}' in metrics
    assert (
        'tokensmith_events_total{event="token.refused",outcome="denied",reason="invalid_client"}'
        in metrics
    )


def test_login_consent_and_refresh_reuse_events(
    server: ServerThread, http: httpx.Client, web_app: Registered, alice: str, settings: Settings
) -> None:
    url, _ = auth_url(server, web_app)
    browser = Browser(server.base_url)
    page = browser.submit(browser.open(url), "/login", username="alice", password="wrong password")
    assert page.status_code == 401
    tokens = tokens_for(server, http, web_app)
    first = tokens["refresh_token"]
    second = refresh(http, web_app, first)
    assert second.status_code == 200
    assert refresh(http, web_app, first).status_code == 200  # a duplicate: the same successor
    assert refresh(http, web_app, second.json()["refresh_token"]).status_code == 200
    assert refresh(http, web_app, first).status_code == 400  # an older generation: reuse
    found = events(
        settings,
        {
            "login.failure",
            "login.success",
            "consent.granted",
            "token.refresh_duplicate",
            "token.reuse_detected",
        },
    )
    (failure,) = named(found, "login.failure")
    assert failure.detail == {"username": "alice"} and failure.outcome == "denied"
    assert "wrong password" not in repr(found)
    success = named(found, "login.success")[0]
    assert success.subject == alice and success.client_id == web_app.client_id
    issued = named(found, "token.issued")
    assert [e.detail["grant_type"] for e in issued] == ["authorization_code"] + 3 * [
        "refresh_token"
    ]
    (duplicate,) = named(found, "token.refresh_duplicate")
    assert duplicate.subject == alice and duplicate.detail["duplicate"] == 1
    (reuse,) = named(found, "token.reuse_detected")
    assert reuse.subject == alice and reuse.detail["action"] == "family revoked"
    assert first not in repr(found)


def test_a_replayed_code_is_an_event(
    server: ServerThread, http: httpx.Client, web_app: Registered, alice: str, settings: Settings
) -> None:
    url, verifier = auth_url(server, web_app)
    code = Browser(server.base_url).authorize(url).query["code"]
    assert exchange(http, web_app, code, verifier).status_code == 200
    assert exchange(http, web_app, code, verifier).status_code == 400
    found = events(settings, {"code.replayed"})
    (replay,) = named(found, "code.replayed")
    assert replay.subject == alice and replay.outcome == "failure"


def test_the_admin_api_reads_the_trail(
    http: httpx.Client, register: Any, settings: Settings
) -> None:
    from tokensmith.oauth.clients import NewClient

    admin = register(
        NewClient("console", grant_types=("client_credentials",), scope="tokensmith:admin")
    )
    token = http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "tokensmith:admin"},
        auth=(admin.client_id, admin.secret),
    ).json()["access_token"]
    headers = {"authorization": f"Bearer {token}"}
    body = http.get(
        "/admin/audit", params={"client_id": admin.client_id, "since": "1h"}, headers=headers
    ).json()
    assert [e["event"] for e in body["events"]] == ["token.issued"]
    bad = http.get("/admin/audit", params={"since": "soon"}, headers=headers)
    assert bad.status_code == 400
    bad = http.get("/admin/audit", params={"limit": "x"}, headers=headers)
    assert bad.status_code == 400
    assert http.get("/admin/audit").status_code == 401
