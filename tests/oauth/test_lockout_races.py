"""Lockouts under parallel attack, at every endpoint that checks a secret (SECURITY 57, 58, 40).

Parallel requests are real: asyncio and httpx against the server in its thread, which shares this
process, so a counting hasher sees every Argon2id verification the server makes. Each test runs
with the limits in Redis and kept per node. Two loopback source addresses (127.0.0.1 and
127.0.0.2) stand for an attacker and the genuine client.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from tests.oauth.browser import Browser
from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_authorization import auth_url
from tests.support import REDIS_URL, ServerThread
from tokensmith.accounts import users as users_module
from tokensmith.oauth.clients import NewClient
from tokensmith.settings import Settings

ATTACKER, GENUINE = "127.0.0.2", "127.0.0.1"
_FIELD = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


@pytest.fixture(params=["redis", "local"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    update: dict[str, Any] = {
        "lockout_account_failures": 5,
        "lockout_client_failures": 5,
        "lockout_address_failures": 30,
    }
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        # Atomicity is the point here, not outages (tests/adapters covers those): a test process
        # whose loop stalls under a parallel run must not look like a Redis outage.
        update |= {"redis_url": REDIS_URL, "redis_key_prefix": prefix, "redis_timeout": 5.0}
    return settings.model_copy(update=update)


class CountingHasher(PasswordHasher):
    """Counts the server's verifications; each takes at least ``pause`` s, so requests overlap."""

    def __init__(self, pause: float = 0.05) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.pause = pause
        self.calls = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.calls += 1
        time.sleep(self.pause)
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(users_module, "_hasher", counting)
    monkeypatch.setattr(users_module, "_dummy_hash", counting.hash("nothing anyone knows"))
    return counting


def from_address(server: ServerThread, address: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=server.base_url, transport=transport, timeout=30)


def login_form(server: ServerThread, client: Registered) -> tuple[dict[str, str], dict[str, str]]:
    """The hidden fields and cookies of one login page, to post many times at once."""
    browser = Browser(server.base_url)
    url, _ = auth_url(server, client)
    page = browser.open(url)
    return dict(_FIELD.findall(page.text)), browser.session.cookies.get_dict()


def parallel_logins(
    server: ServerThread, client: Registered, attempts: list[tuple[str, str]]
) -> list[httpx.Response]:
    fields, cookies = login_form(server, client)

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, cookies=cookies, timeout=30) as http:
            return await asyncio.gather(
                *(
                    http.post("/login", data={**fields, "username": u, "password": p})
                    for u, p in attempts
                )
            )

    return asyncio.run(race())


def statuses(responses: list[httpx.Response]) -> dict[int, int]:
    counted: dict[int, int] = {}
    for response in responses:
        counted[response.status_code] = counted.get(response.status_code, 0) + 1
    return counted


# -- passwords ---------------------------------------------------------------------------------


def test_parallel_wrong_passwords_for_one_account_never_pass_the_threshold(
    server: ServerThread, web_app: Registered, alice: str, hasher: CountingHasher
) -> None:
    answers = parallel_logins(server, web_app, [("alice", "wrong password")] * 25)
    assert statuses(answers) == {401: 5, 429: 20}
    assert hasher.calls == 5  # the other twenty never reached the hash
    for locked in (a for a in answers if a.status_code == 429):
        assert int(locked.headers["retry-after"]) >= 1
        assert "Too many failed sign-in attempts" in locked.text
    # Locked by the name typed: the right password waits too, and costs no hash.
    right = parallel_logins(server, web_app, [("Alice", "correct horse battery")])
    assert right[0].status_code == 429 and hasher.calls == 5


def test_parallel_logins_from_one_address_never_pass_its_threshold(
    settings: Settings, web_app: Registered, hasher: CountingHasher
) -> None:
    """Attempts at many names from one address: no more than its threshold reach the hash.

    The threshold is lowered from 30 to 10 to keep the burst small: on a busy 2-core machine a
    burst of 45 logins, client and server in one process, can stall the loop past the 0.25 s
    Redis timeout, and a node that loses Redis counts on alone (tests/adapters/test_redis_limits.py).
    """
    with ServerThread(settings.model_copy(update={"lockout_address_failures": 10})) as server:
        answers = parallel_logins(server, web_app, [(f"user{i}", "guess") for i in range(16)])
    assert statuses(answers) == {401: 10, 429: 6}
    assert hasher.calls == 10


def test_a_right_password_is_refunded_and_leaves_nothing_counted(
    server: ServerThread, web_app: Registered, alice: str, hasher: CountingHasher
) -> None:
    for _ in range(4):
        assert parallel_logins(server, web_app, [("alice", "wrong")])[0].status_code == 401
    signed_in = parallel_logins(server, web_app, [("alice", "correct horse battery")])
    assert signed_in[0].status_code == 200 and 'action="/consent"' in signed_in[0].text
    # The success forgot the account's failures: five more wrong ones before the next lock.
    answers = parallel_logins(server, web_app, [("alice", "wrong")] * 8)
    assert statuses(answers) == {401: 5, 429: 3}


def test_a_login_flood_past_the_hash_queue_gets_503_and_changes_nothing(
    settings: Settings, web_app: Registered, hasher: CountingHasher, register: Registrar
) -> None:
    """One hash at a time and one waiting: the rest are told to come back, not queued."""
    hasher.pause = 0.5
    bounded = settings.model_copy(update={"password_hash_concurrency": 1, "password_hash_queue": 1})
    with ServerThread(bounded) as server:
        answers = parallel_logins(server, web_app, [(f"user{i}", "guess") for i in range(8)])
        assert statuses(answers) == {401: 2, 503: 6}
        assert hasher.calls == 2
        for busy in (a for a in answers if a.status_code == 503):
            assert busy.headers["retry-after"] == "1"
            assert busy.headers["content-type"].startswith("text/html")
            assert "Try again in a moment" in busy.text
        # The refused attempts were refunded: 28 more reach the hash before the address locks.
        hasher.pause = 0.0
        later = [parallel_logins(server, web_app, [(f"v{i}", "guess")])[0] for i in range(29)]
        assert [a.status_code for a in later] == [401] * 28 + [429]


# -- client secrets ----------------------------------------------------------------------------


def test_parallel_wrong_client_secrets_never_pass_the_threshold(
    server: ServerThread, machine: Registered
) -> None:
    form = {"grant_type": "client_credentials"}

    async def race() -> list[httpx.Response]:
        async with from_address(server, ATTACKER) as http:
            return await asyncio.gather(
                *(
                    http.post("/token", data=form, auth=(machine.client_id, "wrong"))
                    for _ in range(25)
                )
            )

    answers = asyncio.run(race())
    assert statuses(answers) == {401: 5, 429: 20}
    for refused in answers:
        body = refused.json()
        if refused.status_code == 401:
            assert body["error"] == "invalid_client" and "www-authenticate" in refused.headers
        else:
            assert body["error"] == "rate_limited" and int(refused.headers["retry-after"]) >= 1


def test_parallel_right_secrets_are_never_held_back(
    server: ServerThread, machine: Registered
) -> None:
    form = {"grant_type": "client_credentials"}

    async def race() -> list[httpx.Response]:
        async with from_address(server, GENUINE) as http:
            return await asyncio.gather(
                *(
                    http.post("/token", data=form, auth=(machine.client_id, machine.secret or ""))
                    for _ in range(40)
                )
            )

    assert statuses(asyncio.run(race())) == {200: 40}


async def _send(
    http: httpx.AsyncClient, endpoint: str, client_id: str, secret: str
) -> httpx.Response:
    data = {
        "/token": {"grant_type": "client_credentials"},
        "/introspect": {"token": "x"},
        "/revoke": {"token": "x"},
        "/api-keys/verify": {},
    }[endpoint]
    if endpoint == "/api-keys/verify":
        # A client authenticates in the body here (no key header: the client is what is tested).
        data = {"client_id": client_id, "client_secret": secret}
        return await http.post(endpoint, data=data)
    return await http.post(endpoint, data=data, auth=(client_id, secret))


ENDPOINTS = ["/token", "/introspect", "/revoke", "/api-keys/verify"]


def authenticated(response: httpx.Response) -> bool:
    """The endpoint accepted the client (the verify call then wants a key, nothing else)."""
    if response.url.path == "/api-keys/verify":
        return response.status_code == 401 and response.json()["error"] == "invalid_key"
    return response.status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_endpoint_shares_one_client_lockout(
    server: ServerThread, register: Registrar, endpoint: str
) -> None:
    """Wrong secrets at any endpoint lock the client there and at every other endpoint, for the
    address they came from; from another address the genuine client goes on (58)."""
    victim = register(
        NewClient("svc", grant_types=("client_credentials",), auth_method="client_secret_post")
        if endpoint == "/api-keys/verify"
        else NewClient("svc", grant_types=("client_credentials",))
    )
    secret = victim.secret or ""

    async def run() -> None:
        async with (
            from_address(server, ATTACKER) as attacker,
            from_address(server, GENUINE) as genuine,
        ):
            wrong = [await _send(attacker, endpoint, victim.client_id, "wrong") for _ in range(6)]
            assert [r.status_code for r in wrong] == [401] * 5 + [429]
            assert all(r.json()["error"] == "invalid_client" for r in wrong[:5])
            assert all("www-authenticate" in r.headers for r in wrong[:5])
            for other in ENDPOINTS:
                if (other == "/api-keys/verify") != (endpoint == "/api-keys/verify"):
                    continue  # the verify call authenticates in the body, the others by Basic
                locked = await _send(attacker, other, victim.client_id, secret)
                assert locked.status_code == 429, other
                assert int(locked.headers["retry-after"]) >= 1
                assert authenticated(await _send(genuine, other, victim.client_id, secret)), other

    asyncio.run(run())


def test_wrong_secrets_at_mixed_endpoints_add_up(server: ServerThread, register: Registrar) -> None:
    victim = register(
        NewClient("svc", grant_types=("client_credentials",), auth_method="client_secret_post")
    )
    secret = victim.secret or ""

    async def run() -> None:
        async with from_address(server, ATTACKER) as http:
            for endpoint in ("/token", "/introspect", "/revoke", "/api-keys/verify", "/token"):
                data = {"client_id": victim.client_id, "client_secret": "wrong"}
                extra = {"/token": {"grant_type": "client_credentials"}}.get(endpoint, {})
                if endpoint in ("/introspect", "/revoke"):
                    extra = {"token": "x"}
                answer = await http.post(endpoint, data={**data, **extra})
                assert answer.status_code == 401, endpoint
            locked = await http.post(
                "/api-keys/verify", data={"client_id": victim.client_id, "client_secret": secret}
            )
            assert locked.status_code == 429

    asyncio.run(run())


def test_bad_secrets_under_a_clients_id_never_lock_out_its_owner(
    server: ServerThread, register: Registrar, native_app: Registered
) -> None:
    """Ten bad secrets under a public app's id, or the gateway's, from one address: the app's
    users and the gateway elsewhere go on, and the guesser is still stopped by its address."""
    gateway = register(NewClient("gateway", grant_types=("client_credentials",)))
    form = {"grant_type": "client_credentials"}

    async def run() -> None:
        async with (
            from_address(server, ATTACKER) as attacker,
            from_address(server, GENUINE) as genuine,
        ):
            for client_id in (native_app.client_id, gateway.client_id):
                for _ in range(10):
                    await attacker.post("/token", data=form, auth=(client_id, "wrong"))
            # The public app: anyone may name it without a secret (method none) at /revoke.
            public = await genuine.post(
                "/revoke", data={"token": "x", "client_id": native_app.client_id}
            )
            assert public.status_code == 200
            ok = await genuine.post(
                "/token", data=form, auth=(gateway.client_id, gateway.secret or "")
            )
            assert ok.status_code == 200
            ok = await genuine.post(
                "/introspect", data={"token": "x"}, auth=(gateway.client_id, gateway.secret or "")
            )
            assert ok.status_code == 200
            # The guesser's address: 20 failures so far, locked at 30 whatever client it names.
            for i in range(10):
                answer = await attacker.post("/token", data=form, auth=(f"nobody{i}", "wrong"))
                assert answer.status_code == 401
            refused = await attacker.post(
                "/token", data=form, auth=(gateway.client_id, gateway.secret or "")
            )
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1

    asyncio.run(run())


# -- API keys ----------------------------------------------------------------------------------


def test_parallel_wrong_api_keys_never_pass_the_threshold(settings: Settings) -> None:
    from tokensmith.apikeys.format import generate_api_key

    # A lower threshold than the other tests, so fewer requests make the point: 45 at once on a
    # busy 2-core machine can stall the loop past the 0.25 s Redis timeout, and a node that
    # loses Redis counts on alone (tests/adapters/test_redis_limits.py).
    strict = settings.model_copy(update={"lockout_address_failures": 6})

    async def race(server: ServerThread) -> list[httpx.Response]:
        async with from_address(server, ATTACKER) as http:
            return await asyncio.gather(
                *(
                    http.post(
                        "/api-keys/verify", headers={"x-api-key": generate_api_key("test").text}
                    )
                    for _ in range(20)
                )
            )

    with ServerThread(strict) as server:
        answers = asyncio.run(race(server))
    assert statuses(answers) == {401: 6, 429: 14}
    assert {a.json()["error"] for a in answers if a.status_code == 429} == {"rate_limited"}
