"""Brute-force lockouts over HTTP: logins, client secrets and API keys (SECURITY 39, 40)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.oauth.browser import Browser
from tests.oauth.conftest import Registered, Registrar, admin_token
from tests.oauth.test_authorization import auth_url
from tests.support import ServerThread
from tokensmith.oauth.clients import NewClient
from tokensmith.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "lockout_account_failures": 3,
            "lockout_client_failures": 3,
            "lockout_address_failures": 6,
        }
    )


def sign_in(
    server: ServerThread, client: Registered, username: str, password: str
) -> tuple[int, str, dict[str, str]]:
    browser = Browser(server.base_url)
    url, _ = auth_url(server, client)
    page = browser.submit(browser.open(url), "/login", username=username, password=password)
    return page.status_code, page.text, dict(page.headers)


def test_failed_logins_lock_the_account_whether_or_not_it_exists(
    server: ServerThread, http: httpx.Client, web_app: Registered, alice: str, register: Registrar
) -> None:
    token = admin_token(http, register)  # before the address itself gets locked
    for name in ("alice", "mallory"):  # mallory has no account
        for _ in range(3):
            status, _, _ = sign_in(server, web_app, name, "wrong password")
            assert status == 401
    locked = [
        sign_in(server, web_app, name, "correct horse battery") for name in ("Alice ", "mallory")
    ]
    for status, text, headers in locked:
        assert status == 429 and "Too many failed sign-in attempts" in text
        assert int(headers["retry-after"]) == 30
    # Alike but for the name typed and the form's one-time fields.
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", locked[0][1]) == strip.sub("", locked[1][1])

    cleared = http.post(
        "/admin/lockouts/clear",
        json={"account": "ALICE", "address": "127.0.0.1"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert cleared.status_code == 200 and cleared.json() == {
        "cleared": {"account": "ALICE", "address": "127.0.0.1"}
    }
    status, text, _ = sign_in(server, web_app, "alice", "correct horse battery")
    assert status == 200 and 'action="/consent"' in text  # signed in, now asked to consent


def test_repeated_bad_client_secrets_get_429(
    http: httpx.Client, machine: Registered, register: Registrar
) -> None:
    assert machine.secret is not None
    form = {"grant_type": "client_credentials"}
    statuses = [
        http.post("/token", data=form, auth=(machine.client_id, "wrong")).status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    locked = http.post("/token", data=form, auth=(machine.client_id, machine.secret))
    assert locked.status_code == 429 and locked.json()["error"] == "rate_limited"
    assert int(locked.headers["retry-after"]) >= 1
    introspect = http.post(
        "/introspect", data={"token": "x"}, auth=(machine.client_id, machine.secret)
    )
    assert introspect.status_code == 429
    # Another client from the same address is not locked yet (3 address failures of 6).
    other = register(NewClient("other", grant_types=("client_credentials",)))
    assert other.secret is not None
    assert http.post("/token", data=form, auth=(other.client_id, other.secret)).status_code == 200


def test_an_address_guessing_api_keys_is_locked_out(http: httpx.Client) -> None:
    from tokensmith.apikeys.format import generate_api_key

    statuses = [
        http.post(
            "/api-keys/verify", headers={"x-api-key": generate_api_key("test").text}
        ).status_code
        for _ in range(7)
    ]
    assert statuses == [401] * 6 + [429]
    refused = http.post("/api-keys/verify", headers={"x-api-key": "anything"})
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert "too many failed attempts" in refused.json()["error_description"]


def test_unlocking_needs_a_name(http: httpx.Client, register: Registrar) -> None:
    token = admin_token(http, register)
    response = http.post(
        "/admin/lockouts/clear", json={}, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400


def test_a_client_over_its_own_rate_gets_429(http: httpx.Client, register: Registrar) -> None:
    limited = register(NewClient("batch", grant_types=("client_credentials",), rate_limit=2))
    assert limited.secret is not None
    form = {"grant_type": "client_credentials"}
    answers = [
        http.post("/token", data=form, auth=(limited.client_id, limited.secret)) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error_description"] == "this client's request rate limit is exceeded"
    assert int(answers[2].headers["retry-after"]) == 30
    # The limit counts only requests the client itself authenticated: others cannot spend it.
    other = register(NewClient("batch2", grant_types=("client_credentials",), rate_limit=1))
    assert other.secret is not None
    for _ in range(2):
        http.post("/token", data=form, auth=(other.client_id, "wrong"))
    assert http.post("/token", data=form, auth=(other.client_id, other.secret)).status_code == 200
    assert (
        http.post(
            "/introspect", data={"token": "x"}, auth=(other.client_id, other.secret)
        ).status_code
        == 429
    )
