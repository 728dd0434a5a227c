"""The client pipeline on its own: no server, no database, a frozen clock (oauth/pipeline.py).

Every endpoint that authenticates a client runs these steps in this order; each test drives
one step through a real ``ClientAuthenticator`` over the in-memory stores (``persistence/memory``) and a recording
gate, so what is asserted is the pipeline's behaviour, not the lockout arithmetic (which has its
own suites).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support import OFFERED, token_request
from tokensmith.audit.events import AuditEvent
from tokensmith.core.clock import FrozenClock
from tokensmith.core.secrets import keyed_hash
from tokensmith.errors import AuthorizationPending, InvalidRequest, SlowDown, TooManyRequests
from tokensmith.oauth.client_auth import ClientAuthenticator
from tokensmith.oauth.clients import Client, NewClient
from tokensmith.oauth.params import Params
from tokensmith.oauth.pipeline import Answer, ClientEndpoint
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.persistence.memory import MemoryStores

pytestmark = pytest.mark.anyio
PEPPER = b"p" * 32
SECRET = "s3cret-value"


@dataclass
class Gate:
    """Records the calls; locks what it is told to."""

    locked: set[str] = field(default_factory=set)
    held_clients: set[str] = field(default_factory=set)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def within_address_rate(self, address: str | None) -> None:
        self.calls.append(("rate", address))

    async def judge_client(self, *, failed: bool, claimed: str | None, address: str) -> None:
        self.calls.append(("judge", failed, claimed, address))
        if claimed in self.locked or address in self.locked:
            raise TooManyRequests(30)

    async def admit(self, client: Client) -> None:
        self.calls.append(("admit", client.client_id))
        if client.client_id in self.held_clients:
            raise TooManyRequests(60)


@dataclass
class Trail:
    events: list[AuditEvent] = field(default_factory=list)

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)


def confidential() -> Client:
    return NewClient("svc", grant_types=("client_credentials",)).validated(
        "svc", keyed_hash(PEPPER, SECRET), 0, offered=OFFERED
    )


def public() -> Client:
    return NewClient("spa", is_public=True, redirect_uris=("https://spa.test/cb",)).validated(
        "spa", None, 0, offered=OFFERED
    )


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def build(
    gate: Gate, trail: Trail, handled: list[Client | None], **rules: Any
) -> ClientEndpoint:
    clock = FrozenClock()
    stores = MemoryStores()
    for client in (confidential(), public()):
        await stores.clients.add(client)
    authenticator = ClientAuthenticator(
        clients=stores.clients,
        pepper=PEPPER,
        clock=clock,
        issuer="https://issuer.test",
        leeway=30,
        replay=stores.assertions,
    )

    async def handler(request: ProtocolRequest, client: Client | None) -> Answer:
        handled.append(client)
        return Answer(body={"ok": True}, event="thing.done", fingerprint="fp")

    return ClientEndpoint(
        name="thing",
        handler=handler,
        authenticator=authenticator,
        gate=gate,
        audit=trail,
        clock=clock,
        **rules,
    )


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def trail() -> Trail:
    return Trail()


async def test_success_runs_every_step_in_order_and_audits_the_handler_s_event(
    gate: Gate, trail: Trail
) -> None:
    handled: list[Client | None] = []
    endpoint = await build(gate, trail, handled)
    answer = await endpoint(token_request(Params(), authorization=basic("svc", SECRET)))
    assert answer.status == 200 and answer.body == {"ok": True}
    assert gate.calls == [
        ("rate", "127.0.0.1"),
        ("judge", False, "svc", "127.0.0.1"),
        ("admit", "svc"),
    ]
    assert [c.client_id for c in handled if c] == ["svc"]
    (event,) = trail.events
    assert (event.event, event.outcome, event.client_id, event.fingerprint) == (
        "thing.done",
        "success",
        "svc",
        "fp",
    )


async def test_a_wrong_secret_is_judged_as_a_failure_and_never_reaches_the_handler(
    gate: Gate, trail: Trail
) -> None:
    handled: list[Client | None] = []
    answer = await (await build(gate, trail, handled))(
        token_request(Params(), authorization=basic("svc", "wrong"))
    )
    assert answer.status == 401 and answer.body["error"] == "invalid_client"
    assert answer.headers["www-authenticate"].startswith("Basic ")
    assert answer.headers["cache-control"] == "no-store"
    assert ("judge", True, "svc", "127.0.0.1") in gate.calls
    assert not any(call[0] == "admit" for call in gate.calls)
    assert handled == []
    (event,) = trail.events
    assert (event.event, event.outcome, event.client_id) == ("thing.refused", "denied", "svc")


async def test_malformed_credentials_are_counted_like_wrong_ones(gate: Gate, trail: Trail) -> None:
    """Parsed once with the request: a malformed Basic header is a failure under the address."""
    answer = await (await build(gate, trail, []))(
        token_request(Params(), authorization="Basic !!not-base64!!")
    )
    assert answer.status == 401
    assert ("judge", True, None, "127.0.0.1") in gate.calls


async def test_a_locked_address_gets_429_even_with_the_right_secret(
    gate: Gate, trail: Trail
) -> None:
    gate.locked.add("127.0.0.1")
    handled: list[Client | None] = []
    answer = await (await build(gate, trail, handled))(
        token_request(Params(), authorization=basic("svc", SECRET))
    )
    assert answer.status == 429 and answer.headers["retry-after"] == "30"
    assert handled == []


async def test_a_held_client_is_refused_at_admission(gate: Gate, trail: Trail) -> None:
    gate.held_clients.add("svc")
    answer = await (await build(gate, trail, []))(
        token_request(Params(), authorization=basic("svc", SECRET))
    )
    assert answer.status == 429 and answer.headers["retry-after"] == "60"
    assert trail.events[-1].event == "thing.refused"


async def test_the_precheck_runs_before_anyone_is_authenticated(gate: Gate, trail: Trail) -> None:
    def precheck(request: ProtocolRequest) -> None:
        raise InvalidRequest("no such thing")

    answer = await (await build(gate, trail, [], precheck=precheck))(
        token_request(Params(), authorization=basic("svc", "wrong"))
    )
    assert answer.status == 400 and answer.body["error"] == "invalid_request"
    assert gate.calls == []  # no rate taken, no failure counted


async def test_a_public_client_is_refused_where_only_confidential_ones_may_call(
    gate: Gate, trail: Trail
) -> None:
    handled: list[Client | None] = []
    endpoint = await build(gate, trail, handled, confidential_only=True)
    answer = await endpoint(token_request(Params([("client_id", "spa")])))
    assert answer.status == 401 and "confidential" in answer.body["error_description"]
    assert handled == []


async def test_an_optional_client_is_authenticated_only_when_the_caller_presents_one(
    gate: Gate, trail: Trail
) -> None:
    handled: list[Client | None] = []
    endpoint = await build(gate, trail, handled, client_optional=True)
    anonymous = ProtocolRequest("POST", "http://x/verify", Params(), "192.0.2.9")
    assert (await endpoint(anonymous)).status == 200
    assert handled == [None] and gate.calls == []
    with_body = ProtocolRequest("POST", "http://x/verify", Params(), "192.0.2.9", has_body=True)
    assert (await endpoint(with_body)).status == 401  # a body without credentials
    assert handled == [None]


async def test_a_request_refused_before_it_was_read_is_audited(gate: Gate, trail: Trail) -> None:
    endpoint = await build(gate, trail, [])
    unread = token_request(Params(), authorization=basic("svc", SECRET))
    answer = endpoint.refuse(unread, InvalidRequest("the request body must be a form"))
    assert answer.status == 400
    (event,) = trail.events
    assert event.event == "thing.refused" and event.client_id == "svc"
    assert gate.calls == []


async def test_a_routine_refusal_is_answered_and_counted_but_leaves_no_audit_row(
    gate: Gate, trail: Trail
) -> None:
    """A device's authorization_pending poll (``OAuthError.audited`` False): the same answer as
    any refusal, the hook told (the server counts it as a metric), and no event recorded."""
    counted: list[tuple[str, str]] = []
    endpoint = await build(
        gate, trail, [], on_unaudited=lambda name, error: counted.append((name, error.error))
    )
    request = token_request(Params(), authorization=basic("svc", SECRET))
    answer = endpoint.refuse(request, AuthorizationPending("the user has not decided yet"))
    assert answer.status == 400 and answer.body["error"] == "authorization_pending"
    assert counted == [("thing", "authorization_pending")] and trail.events == []
    endpoint.refuse(request, SlowDown("poll at most every 10 seconds"))  # still an event
    assert [e.detail["error"] for e in trail.events] == ["slow_down"]
    assert counted == [("thing", "authorization_pending")]
