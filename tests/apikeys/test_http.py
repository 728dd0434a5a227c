"""API keys over real HTTP: the admin API, verification, leak reports and webhooks."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.apikeys.conftest import WEBHOOK_SECRET, Receiver, client_token
from tests.oauth.conftest import Registered, Registrar
from tests.support import OFFERED, ServerThread
from tokensmith.adapters.logs import JsonFormatter
from tokensmith.oauth.clients import NewClient
from tokensmith.settings import Settings


@pytest.fixture
def settings(settings: Settings, receiver: Receiver) -> Settings:
    return settings.model_copy(
        update={"webhook_urls": receiver.url, "webhook_secret": SecretStr(WEBHOOK_SECRET)}
    )


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every log line the server writes during the test, as the JSON formatter renders it."""
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    for name in quiet:  # as configure_logging leaves them in the server
        logging.getLogger(name).setLevel(logging.WARNING)
    yield sink
    root.removeHandler(handler)
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def create(http: httpx.Client, token: str, **body: Any) -> dict[str, Any]:
    response = http.post(
        "/admin/api-keys", json={"name": "n", "scope": "a", **body}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def check(http: httpx.Client, key: str, **kwargs: Any) -> httpx.Response:
    return http.post("/api-keys/verify", headers={"x-api-key": key}, **kwargs)


# -- the admin API ----------------------------------------------------------------------------


def test_the_admin_api_lifecycle(http: httpx.Client, admin_token: str) -> None:
    created = create(
        http,
        admin_token,
        name="billing export",
        scope=["billing:read"],
        expires_in="30d",
        allowed_cidrs=["127.0.0.0/8"],
        rate_limit=600,
    )
    key, key_id = created["key"], created["key_id"]
    assert key.startswith(f"tsk_test_{key_id}_")
    assert created["status"] == "active" and created["owner"].startswith("client:")
    assert created["expires_at"] - created["created_at"] == 30 * 86400

    listed = http.get("/admin/api-keys", headers=bearer(admin_token)).json()["keys"]
    assert [k["key_id"] for k in listed] == [key_id]
    assert key not in json.dumps(listed) and "secret_hash" not in listed[0]
    shown = http.get(f"/admin/api-keys/{key_id}", headers=bearer(admin_token)).json()
    assert shown["name"] == "billing export" and "key" not in shown

    rotated = http.post(
        f"/admin/api-keys/{key_id}/rotate", json={"grace": 3600}, headers=bearer(admin_token)
    )
    assert rotated.status_code == 201
    new = rotated.json()
    assert new["key"] != key and new["scope"] == "billing:read"
    assert check(http, key).status_code == 200  # still inside its grace period
    assert check(http, new["key"]).status_code == 200
    old = http.get(f"/admin/api-keys/{key_id}", headers=bearer(admin_token)).json()
    assert old["status"] == "rotating" and old["replaced_by"] == new["key_id"]

    revoked = http.post(f"/admin/api-keys/{new['key_id']}/revoke", headers=bearer(admin_token))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert check(http, new["key"]).json()["error_description"] == "the API key has been revoked"
    owned = http.get("/admin/api-keys", params={"owner": "nobody"}, headers=bearer(admin_token))
    assert owned.json() == {"keys": []}


def test_the_admin_api_needs_an_admin_token(
    http: httpx.Client, admin_client: Registered, register: Registrar
) -> None:
    anonymous = http.get("/admin/api-keys")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="tokensmith"'
    bogus = http.get("/admin/api-keys", headers=bearer("tsat_bogus"))
    assert bogus.status_code == 401 and bogus.json()["error"] == "invalid_token"
    narrow = client_token(http, admin_client, "other")
    refused = http.post("/admin/api-keys", json={"name": "n", "scope": "a"}, headers=bearer(narrow))
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert 'scope="tokensmith:admin"' in refused.headers["www-authenticate"]
    in_query = http.get("/admin/api-keys", params={"access_token": narrow})
    assert in_query.status_code == 400


def test_a_token_for_another_audience_is_refused(http: httpx.Client, register: Registrar) -> None:
    client = register(
        NewClient(
            "elsewhere",
            grant_types=("client_credentials",),
            scope="tokensmith:admin",
            allowed_resources=("https://orders.example.com",),
        )
    )
    assert client.secret is not None
    response = http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "scope": "tokensmith:admin",
            "resource": "https://orders.example.com",
        },
        auth=(client.client_id, client.secret),
    )
    token = response.json()["access_token"]
    refused = http.get("/admin/api-keys", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.json()["error_description"] == "the access token is not meant for this server"


JSON = "application/json"
BAD_ADMIN_BODIES: list[tuple[bytes, str, int, str]] = [
    (b"{", JSON, 400, "not valid JSON"),
    (b"[]", JSON, 400, "JSON object"),
    (b"name=n&scope=a", "application/x-www-form-urlencoded", 400, "application/json"),
    (b'{"name": 5, "scope": "a"}', JSON, 400, "name must be a string"),
    (b'{"name": "n", "scope": 5}', JSON, 400, "scope"),
    (b'{"name": "n", "scope": "a", "rate_limit": "9"}', JSON, 400, "integer"),
    (b'{"name": "n", "scope": "a", "rate_limit": true}', JSON, 400, "integer"),
    (b'{"name": "n", "scope": "a", "expires_in": "soon"}', JSON, 400, "duration"),
    (b'{"name": "n", "scope": "a", "allowed_cidrs": "x"}', JSON, 400, "list"),
    (b'{"name": "n", "scope": "a", "allowed_cidrs": ["x"]}', JSON, 400, "'x'"),
    (b'{"a":' * 20 + b"1" + b"}" * 20, JSON, 400, "nested"),
    (b"[" * 30_000 + b"]" * 30_000, JSON, 400, "JSON"),
    (b"[" * 50_000 + b"]" * 50_000, JSON, 413, "larger"),
]


def test_bad_admin_requests_get_clear_errors(http: httpx.Client, admin_token: str) -> None:
    for body, content_type, status, fragment in BAD_ADMIN_BODIES:
        response = http.post(
            "/admin/api-keys",
            content=body,
            headers={**bearer(admin_token), "content-type": content_type},
        )
        assert response.status_code == status, (body[:40], response.text)
        assert fragment in response.json()["error_description"], body[:40]
    assert http.get("/admin/api-keys", headers=bearer(admin_token)).json() == {"keys": []}


def test_unknown_keys_and_bad_rotations_in_the_admin_api(
    http: httpx.Client, admin_token: str
) -> None:
    missing = http.get("/admin/api-keys/AAAAAAAAAAAA", headers=bearer(admin_token))
    assert missing.status_code == 404
    created = create(http, admin_token)
    url = f"/admin/api-keys/{created['key_id']}/rotate"
    too_long = http.post(url, json={"grace": "60d"}, headers=bearer(admin_token))
    assert too_long.status_code == 400 and "grace" in too_long.json()["error_description"]
    http.post(f"/admin/api-keys/{created['key_id']}/revoke", headers=bearer(admin_token))
    again = http.post(url, headers=bearer(admin_token))
    assert again.status_code == 400 and "revoked" in again.json()["error_description"]


# -- verification -------------------------------------------------------------------------------


def test_verification_answers_with_identity(http: httpx.Client, admin_token: str) -> None:
    created = create(http, admin_token, scope="orders:read orders:write", rate_limit=50)
    response = check(http, created["key"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "active": True,
        "key_id": created["key_id"],
        "name": "n",
        "owner": created["owner"],
        "scope": "orders:read orders:write",
        "expires_at": None,
        "rate_limit": 50,
    }


def test_refusals_are_clear_and_alike(http: httpx.Client, admin_token: str) -> None:
    created = create(http, admin_token)
    key = created["key"]
    from tokensmith.apikeys.format import _checksum

    forged_body = key[: len("tsk_test_") + 13] + "Z" * 43
    unknown_body = "tsk_test_ZZZZZZZZZZZZ_" + "Z" * 43
    answers = [
        check(http, k)
        for k in (forged_body + _checksum(forged_body), unknown_body + _checksum(unknown_body))
    ]
    assert [a.status_code for a in answers] == [401, 401]
    assert (
        answers[0].json()
        == answers[1].json()
        == {
            "error": "invalid_key",
            "error_description": "the API key is not valid",
        }
    )
    assert answers[0].headers["www-authenticate"] == answers[1].headers["www-authenticate"]
    assert (
        answers[0]
        .headers["www-authenticate"]
        .startswith('ApiKey realm="tokensmith", error="invalid_key"')
    )

    typo = check(http, key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert typo.status_code == 401 and "checksum" in typo.json()["error_description"]
    missing = http.post("/api-keys/verify")
    assert missing.status_code == 401 and "X-Api-Key" in missing.json()["error_description"]


def test_a_key_in_the_query_string_is_refused(
    http: httpx.Client, admin_token: str, logs: io.StringIO
) -> None:
    key = create(http, admin_token)["key"]
    for params in ({"api_key": key}, {"key": key}, {"x": key}):
        response = http.post("/api-keys/verify", params=params, headers={"x-api-key": key})
        assert response.status_code == 400, params
    assert key not in logs.getvalue()


def test_an_oversized_key_header_is_refused(http: httpx.Client) -> None:
    response = http.post("/api-keys/verify", headers={"x-api-key": "tsk_" + "a" * 20_000})
    assert response.status_code == 431


def test_addresses_a_gateway_vouches_for(
    http: httpx.Client, admin_token: str, register: Registrar
) -> None:
    key = create(http, admin_token, allowed_cidrs=["203.0.113.0/24"])["key"]
    own = check(http, key)  # from 127.0.0.1
    assert own.status_code == 403 and own.json()["error"] == "forbidden_source"
    gateway = register(
        NewClient("gateway", grant_types=("client_credentials",), may_vouch_client_ip=True)
    )
    assert gateway.secret is not None
    vouched = check(
        http, key, data={"client_ip": "203.0.113.9"}, auth=(gateway.client_id, gateway.secret)
    )
    assert vouched.status_code == 200
    outside = check(
        http, key, data={"client_ip": "198.51.100.1"}, auth=(gateway.client_id, gateway.secret)
    )
    assert outside.status_code == 403
    anonymous = check(http, key, data={"client_ip": "203.0.113.9"})
    assert anonymous.status_code == 400 or anonymous.status_code == 401
    wrong = check(http, key, data={"client_ip": "203.0.113.9"}, auth=(gateway.client_id, "nope"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    public = register(NewClient("spa", is_public=True, redirect_uris=("https://spa.test/cb",)))
    as_public = check(http, key, data={"client_ip": "203.0.113.9", "client_id": public.client_id})
    assert as_public.status_code == 401
    # What a gateway vouches for is an address: anything else is refused, never counted under
    # a made-up lockout name or matched against the key's ranges.
    for bogus in ("not-an-ip", "203.0.113.9, 10.0.0.1", "203.0.113.0/24", "x" * 80):
        refused = check(
            http, key, data={"client_ip": bogus}, auth=(gateway.client_id, gateway.secret)
        )
        assert refused.status_code == 400, bogus
        assert refused.json()["error"] == "invalid_request"


def test_only_a_client_allowed_to_vouch_may_name_an_address(
    http: httpx.Client, admin_token: str, register: Registrar
) -> None:
    """Vouching for client_ip is a per-client permission (--may-vouch-client-ip), not a right of
    every confidential client: without it the parameter is refused, never silently used."""
    key = create(http, admin_token, allowed_cidrs=["203.0.113.0/24"])["key"]
    plain = register(NewClient("service", grant_types=("client_credentials",)))
    assert plain.secret is not None
    refused = check(
        http, key, data={"client_ip": "203.0.113.9"}, auth=(plain.client_id, plain.secret)
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "unauthorized_client"
    assert "client_ip" in refused.json()["error_description"]
    # Without client_ip the same client is judged by its own address, as anyone would be.
    own = check(http, key, auth=(plain.client_id, plain.secret))
    assert own.status_code == 403 and own.json()["error"] == "forbidden_source"
    with pytest.raises(ValueError, match="public client cannot vouch"):
        NewClient(
            "spa", is_public=True, redirect_uris=("https://spa.test/cb",), may_vouch_client_ip=True
        ).validated("x", None, 0, offered=OFFERED)


def test_the_rate_limit_answers_429(http: httpx.Client, admin_token: str) -> None:
    key = create(http, admin_token, rate_limit=2)["key"]
    assert [check(http, key).status_code for _ in range(3)] == [200, 200, 429]
    limited = check(http, key)
    assert limited.json()["error"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1


def test_refusals_are_audited_in_batches(
    http: httpx.Client, admin_token: str, settings: Settings
) -> None:
    key = create(http, admin_token)["key"]
    check(http, key[:-1] + ("A" if key[-1] != "A" else "B"))
    import asyncio

    from tokensmith.audit.events import AuditQuery
    from tokensmith.runtime.services import open_services

    async def refused() -> list[Any]:
        services = await open_services(settings)
        try:
            return await services.audit.query(AuditQuery(event="api_key.refused"))
        finally:
            await services.close()

    deadline = time.monotonic() + 10
    events = asyncio.run(refused())
    while not events and time.monotonic() < deadline:
        time.sleep(0.1)
        events = asyncio.run(refused())
    assert events and events[0].detail == {"reason": "malformed"}
    assert events[0].source_ip == "127.0.0.1" and events[0].fingerprint
    assert key[:-1] not in str(events[0])


# -- leaks and webhooks --------------------------------------------------------------------------


def test_a_leak_report_revokes_the_key_and_notifies(
    http: httpx.Client,
    admin_token: str,
    admin_client: Registered,
    receiver: Receiver,
    logs: io.StringIO,
) -> None:
    # The leak's first delivery fails, whichever message reaches the receiver first: the alert
    # about the revoked key below is delivered side by side with it.
    receiver.fail_once_on = b'"api_key.leaked"'
    created = create(http, admin_token, name="deploy bot")
    key = created["key"]
    assert check(http, key).status_code == 200
    reporter = client_token(http, admin_client, "tokensmith:leaks")
    candidates = [
        {
            "token": key,
            "type": "tokensmith_api_key",
            "url": "https://github.test/o/r/blob/x",
            "source": "content",
        },
        {"token": "tsk_test_" + "A" * 62, "type": "tokensmith_api_key", "url": "", "source": ""},
    ]
    response = http.post("/api-keys/leaks", json=candidates, headers=bearer(reporter))
    assert response.status_code == 200
    assert response.json() == [
        {
            "token_hash": hashlib.sha256(key.encode()).hexdigest(),
            "token_type": "tokensmith_api_key",
            "label": "true_positive",
        },
        {
            "token_hash": hashlib.sha256(candidates[1]["token"].encode()).hexdigest(),
            "token_type": "tokensmith_api_key",
            "label": "false_positive",
        },
    ]
    assert check(http, key).json()["error_description"] == "the API key has been revoked"

    # The leak's message: its first delivery got a 500 and was retried with the same id. (The
    # revoked key checked above also raised an anomaly alert, a message of its own.)
    deadline = time.monotonic() + 15
    leaked: list[tuple[dict[str, str], bytes]] = []
    while len(leaked) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        leaked = [(h, b) for h, b in receiver.received if b'"api_key.leaked"' in b]
    assert len(leaked) >= 2, receiver.received
    (first_headers, _), (headers, body) = leaked[:2]
    assert first_headers["tokensmith-delivery"] == headers["tokensmith-delivery"]
    stamp, mac = (part.split("=", 1)[1] for part in headers["tokensmith-signature"].split(","))
    expected = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(mac, expected.hexdigest())
    message = json.loads(body)
    assert message["event"] == "api_key.leaked"
    assert message["data"]["key_id"] == created["key_id"]
    assert message["data"]["owner"] == created["owner"]
    assert message["data"]["reporter"] == admin_client.client_id
    assert key not in body.decode()
    assert key not in logs.getvalue() and "s3cret" not in logs.getvalue()


def test_leak_reports_need_the_leaks_scope(http: httpx.Client, admin_token: str) -> None:
    response = http.post("/api-keys/leaks", json=[], headers=bearer(admin_token))
    assert response.status_code == 403
    assert http.post("/api-keys/leaks", json=[]).status_code == 401


def test_bad_leak_reports(http: httpx.Client, admin_client: Registered) -> None:
    reporter = client_token(http, admin_client, "tokensmith:leaks")
    bad: list[Any] = [
        {"token": "x"},
        [{"tok": "x"}],
        [{"token": 5}],
        [{"token": "x", "url": 5}],
        ["x"],
        [{"token": "x"}] * 101,
    ]
    for body in bad:
        response = http.post("/api-keys/leaks", json=body, headers=bearer(reporter))
        assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("depth", [9, 500, 900])
def test_json_nested_deeper_than_the_cap_is_refused_not_a_server_error(
    http: httpx.Client, admin_client: Registered, admin_token: str, depth: int
) -> None:
    """Bodies the parser accepts but that nest past the cap: counting their depth must not
    itself recurse past Python's limit (a 500 for 500 levels, once a request is on the stack)."""
    reporter = client_token(http, admin_client, "tokensmith:leaks")
    body = "[" * depth + "]" * depth
    headers = {"content-type": "application/json"}
    for path, token in (("/api-keys/leaks", reporter), ("/admin/api-keys", admin_token)):
        response = http.post(path, content=body, headers={**headers, **bearer(token)})
        assert response.status_code == 400, (path, response.text[:200])
        assert response.json()["error"] == "invalid_request"


# -- across nodes --------------------------------------------------------------------------------


def test_a_revocation_reaches_another_node_within_a_second(
    settings: Settings, http: httpx.Client, admin_token: str
) -> None:
    """SECURITY 49, with two servers on one database: node B caches the key, node A revokes."""
    created = create(http, admin_token)
    with ServerThread(settings) as node_b, httpx.Client(base_url=node_b.base_url) as b:
        assert check(b, created["key"]).status_code == 200  # now in node B's cache
        revoked = http.post(
            f"/admin/api-keys/{created['key_id']}/revoke", headers=bearer(admin_token)
        )
        assert revoked.status_code == 200
        assert check(http, created["key"]).status_code == 401  # node A forgot it at once
        time.sleep(1.05)
        refused = check(b, created["key"])
        assert refused.status_code == 401
        assert refused.json()["error_description"] == "the API key has been revoked"


def test_last_used_reaches_the_database(http: httpx.Client, admin_token: str) -> None:
    created = create(http, admin_token)
    check(http, created["key"])
    deadline = time.monotonic() + 10
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        shown = http.get(f"/admin/api-keys/{created['key_id']}", headers=bearer(admin_token)).json()
        if shown["last_used_at"] is not None:
            break
        time.sleep(0.1)
    assert shown["last_used_at"] is not None


def test_a_hanging_webhook_never_holds_up_a_request(
    settings: Settings, admin_client: Registered
) -> None:
    """The receiver accepts the connection and never answers; the leak report still returns."""
    import socket

    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)  # accepted by the kernel, never read: every delivery waits for its timeout
    hanging = settings.model_copy(
        update={"webhook_urls": f"http://127.0.0.1:{hang.getsockname()[1]}/hook"}
    )
    try:
        with (
            ServerThread(hanging) as node,
            httpx.Client(base_url=node.base_url, timeout=30) as http,
        ):
            admin = client_token(http, admin_client, "tokensmith:admin")
            reporter = client_token(http, admin_client, "tokensmith:leaks")
            keys = [create(http, admin, name=f"k{i}")["key"] for i in range(3)]
            for key in keys:  # three notifications queue up behind a receiver that hangs
                answer = http.post(
                    "/api-keys/leaks", json=[{"token": key}], headers=bearer(reporter)
                )
                assert answer.json()[0]["label"] == "true_positive"
            token = client_token(http, admin_client, "other")  # issuance goes on meanwhile
            assert token
    finally:
        hang.close()
