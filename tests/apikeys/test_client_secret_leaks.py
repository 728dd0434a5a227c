"""A leaked client secret reported at ``POST /api-keys/leaks`` stops working at once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

import httpx
import pytest
from pydantic import SecretStr

from tests.apikeys.conftest import WEBHOOK_SECRET, Receiver, client_token
from tests.oauth.conftest import Registered, Registrar
from tokensmith.audit.events import AuditQuery
from tokensmith.core.secrets import keyed_hash
from tokensmith.oauth.clients import NewClient, generate_client_secret
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings


@pytest.fixture
def settings(settings: Settings, receiver: Receiver) -> Settings:
    return settings.model_copy(
        update={"webhook_urls": receiver.url, "webhook_secret": SecretStr(WEBHOOK_SECRET)}
    )


@pytest.fixture
def worker(register: Registrar) -> Registered:
    return register(NewClient("worker", grant_types=("client_credentials",), scope="api"))


def token_status(http: httpx.Client, client_id: str, secret: str) -> int:
    data = {"grant_type": "client_credentials", "scope": "api"}
    return http.post("/token", data=data, auth=(client_id, secret)).status_code


def report(http: httpx.Client, reporter: str, *tokens: str) -> list[str]:
    candidates = [{"token": t, "type": "tokensmith_client_secret", "url": "u"} for t in tokens]
    response = http.post(
        "/api-keys/leaks", json=candidates, headers={"authorization": f"Bearer {reporter}"}
    )
    assert response.status_code == 200, response.text
    for token, verdict in zip(tokens, response.json(), strict=True):
        assert verdict["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    return [verdict["label"] for verdict in response.json()]


def test_a_reported_secret_is_revoked_audited_and_announced(
    http: httpx.Client,
    admin_client: Registered,
    worker: Registered,
    receiver: Receiver,
    settings: Settings,
) -> None:
    assert worker.secret is not None
    assert token_status(http, worker.client_id, worker.secret) == 200
    reporter = client_token(http, admin_client, "tokensmith:leaks")
    mistyped = worker.secret[:-1] + ("A" if worker.secret[-1] != "A" else "B")
    unknown = generate_client_secret()
    labels = report(http, reporter, worker.secret, mistyped, unknown, "tscs_short")
    assert labels == ["true_positive", "false_positive", "false_positive", "false_positive"]
    assert token_status(http, worker.client_id, worker.secret) == 401
    assert report(http, reporter, worker.secret) == ["false_positive"]  # nothing left to revoke

    deadline = time.monotonic() + 10
    sent: list[bytes] = []
    while not sent and time.monotonic() < deadline:
        time.sleep(0.05)
        sent = [body for _, body in receiver.received if b'"client.secret_leaked"' in body]
    message = json.loads(sent[0])
    assert message["data"]["client_id"] == worker.client_id
    assert worker.secret not in sent[0].decode()

    async def events() -> list[str]:
        services = await open_services(settings)
        try:
            found = await services.audit.query(AuditQuery(client_id=worker.client_id))
            return [e.event for e in found]
        finally:
            await services.close()

    assert "client.secret_leaked" in asyncio.run(events())


def test_a_leaked_old_secret_ends_its_overlap_and_the_new_one_works(
    http: httpx.Client, admin_client: Registered, worker: Registered, settings: Settings
) -> None:
    assert worker.secret is not None
    new = generate_client_secret()

    async def rotate() -> None:
        services = await open_services(settings)
        try:
            now = services.clock.now()
            digest = keyed_hash(services.master.pepper, new)
            assert await services.clients.replace_secret(worker.client_id, digest, now + 3600, now)
        finally:
            await services.close()

    asyncio.run(rotate())
    time.sleep(1.1)  # the server's client cache
    assert token_status(http, worker.client_id, worker.secret) == 200  # the overlap
    reporter = client_token(http, admin_client, "tokensmith:leaks")
    assert report(http, reporter, worker.secret) == ["true_positive"]
    assert token_status(http, worker.client_id, worker.secret) == 401
    assert token_status(http, worker.client_id, new) == 200
