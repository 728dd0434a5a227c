"""SECURITY.md case 60: every credential path of the guard (JWT, introspected opaque token, API
key) holds the credential to this resource's audience, async and blocking alike."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tests.guard.conftest import Keys, asgi_app, flask_app
from tests.guard.forge import AUDIENCE, DROP, ISSUER, b64, claims, sign
from tests.guard.servers import Answer, StubServer, asgi_server, wsgi_server
from tokensmith.apikeys.format import generate_api_key
from tokensmith.guard import (
    Credential,
    Guard,
    Introspector,
    InvalidToken,
    JwtValidator,
    Principal,
    RemoteApiKeyVerifier,
    StaticKeys,
    pin,
    render,
)
from tokensmith.guard.audience import check_audience, describe_refusal
from tokensmith.jose.keys import verification_key_from_jwk

OTHER = "https://other.test"
KEY_ANSWER = {"active": True, "key_id": "k1", "owner": "team-a", "scope": "orders:read"}


def introspection_answer(body: bytes) -> Answer:
    """``tsat_<base64url JSON>`` is active with that JSON as its ``aud``; ``tsat_none`` has none."""
    token = parse_qs(body.decode())["token"][0].removeprefix("tsat_")
    answer: dict[str, Any] = {
        "active": True,
        "sub": "user-1",
        "scope": "orders:read",
        "client_id": "c",
        "iss": ISSUER,
    }
    if token != "none":
        answer["aud"] = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return 200, {}, answer


def opaque(aud: object) -> Credential:
    return Credential("bearer", "tsat_none" if aud is DROP else "tsat_" + b64(json.dumps(aud)))


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        server.routes["/introspect"] = introspection_answer
        server.routes["/api-keys/verify"] = (200, {}, KEY_ANSWER)
        yield server


def introspecting_guard(stub: StubServer, **options: Any) -> Guard:
    introspector = Introspector(
        stub.base_url + "/introspect", client_id="rs", client_secret="s", cache_seconds=0
    )
    return Guard(introspector=introspector, **options)


def both_ways(guard: Guard, credential: Credential) -> list[Principal | InvalidToken]:
    """The async and the blocking answer (each a principal, or the refusal)."""
    outcomes: list[Principal | InvalidToken] = []

    async def in_a_loop() -> Principal:
        try:
            return await guard.authenticate(credential)
        finally:
            await guard.aclose()  # both pools: no socket outlives the test

    runs: list[Callable[[], Principal]] = [
        lambda: guard.authenticate_blocking(credential),
        lambda: asyncio.run(in_a_loop()),
    ]
    for run in runs:
        try:
            outcomes.append(run())
        except InvalidToken as refused:
            outcomes.append(refused)
    return outcomes


def assert_refused(outcomes: list[Principal | InvalidToken], *named: str) -> None:
    for outcome in outcomes:
        assert isinstance(outcome, InvalidToken), outcome
        status, headers, body = render(outcome, "tokensmith")
        assert status == 401 and json.loads(body)["error"] == "invalid_token"
        challenge = dict(headers)["www-authenticate"]
        assert challenge.startswith('Bearer realm="tokensmith", error="invalid_token"')
        for name in named:
            assert name in outcome.description and name in challenge


@pytest.mark.parametrize(
    ("aud", "passes"),
    [
        (AUDIENCE, True),
        ([OTHER, AUDIENCE], True),
        (OTHER, False),
        ([OTHER], False),
        (DROP, False),
        ([], False),
        (AUDIENCE[:-1], False),  # a prefix is another audience
        ([AUDIENCE, 5], False),  # a list that is not all strings names no audience
        (5, False),
    ],
    # repr of the DROP sentinel names a memory address; xdist workers must agree on every id.
    ids=lambda value: "absent" if value is DROP else repr(value),
)
def test_introspected_tokens_are_held_to_the_audience(
    stub: StubServer, aud: object, passes: bool
) -> None:
    for guard in (
        introspecting_guard(stub, audiences=[AUDIENCE]),
        Guard(
            introspector=Introspector(
                stub.base_url + "/introspect",
                client_id="rs",
                client_secret="s",
                audiences=[AUDIENCE],
                cache_seconds=0,
            )
        ),
    ):
        outcomes = both_ways(guard, opaque(aud))
        if passes:
            assert all(isinstance(o, Principal) and o.kind == "opaque" for o in outcomes)
        else:
            assert_refused(outcomes, repr(AUDIENCE))


def test_refusal_says_which_audience_the_token_has(stub: StubServer) -> None:
    assert_refused(both_ways(introspecting_guard(stub, audiences=[AUDIENCE]), opaque(OTHER)), OTHER)
    missing = both_ways(introspecting_guard(stub, audiences=[AUDIENCE]), opaque(DROP))
    assert_refused(missing, "names no audience")


def test_an_introspecting_guard_without_an_audience_does_not_start(stub: StubServer) -> None:
    with pytest.raises(ValueError, match="audiences="):
        introspecting_guard(stub)
    with pytest.raises(ValueError, match="audiences="):
        introspecting_guard(stub, audiences=[])


def test_jwts_are_held_to_the_audience(keys: Keys) -> None:
    validator = JwtValidator(
        StaticKeys([pin(verification_key_from_jwk(keys.es.public_jwk()))]),
        issuer=ISSUER,
        audiences=[AUDIENCE],
    )
    guard = Guard(jwt=validator)
    assert guard.audiences == {AUDIENCE}  # taken from the validator
    good = both_ways(guard, Credential("bearer", sign(keys.es, claims())))
    assert all(isinstance(o, Principal) for o in good)
    wrong = both_ways(guard, Credential("bearer", sign(keys.es, claims(aud=OTHER))))
    assert_refused(wrong, repr(OTHER), repr(AUDIENCE))
    missing = both_ways(guard, Credential("bearer", sign(keys.es, claims(aud=DROP))))
    assert_refused(missing)  # the validator's required-claims rule names it first
    # A narrower audience at the guard than at the validator wins.
    narrow = Guard(jwt=validator, audiences=["https://narrow.test"])
    assert_refused(both_ways(narrow, Credential("bearer", sign(keys.es, claims()))), "narrow")


@pytest.mark.parametrize(
    ("answer", "passes"),
    [
        (KEY_ANSWER, True),  # today's verify answer names no audience: keys are exempt
        ({**KEY_ANSWER, "aud": AUDIENCE}, True),
        ({**KEY_ANSWER, "aud": [OTHER, AUDIENCE]}, True),
        ({**KEY_ANSWER, "aud": OTHER}, False),  # a key bound to another resource
    ],
    ids=["no-aud", "aud", "aud-list", "aud-other"],
)
def test_api_keys_are_held_to_an_audience_they_name(
    stub: StubServer, answer: dict[str, Any], passes: bool
) -> None:
    stub.routes["/api-keys/verify"] = (200, {}, answer)
    try:
        verifier = RemoteApiKeyVerifier(stub.base_url + "/api-keys/verify", cache_seconds=0)
        guard = Guard(api_keys=verifier, audiences=[AUDIENCE])
        outcomes = both_ways(guard, Credential("api_key", generate_api_key("live").text))
        if passes:
            assert all(isinstance(o, Principal) and o.kind == "api_key" for o in outcomes)
        else:
            assert_refused(outcomes, repr(OTHER), repr(AUDIENCE))
    finally:
        stub.routes["/api-keys/verify"] = (200, {}, KEY_ANSWER)


def test_a_bound_key_at_a_guard_without_audiences_is_refused() -> None:
    principal = Principal("o", None, frozenset(), (OTHER,), None, None, "k", "api_key")
    with pytest.raises(InvalidToken, match="none is configured"):
        check_audience(principal, ())


def test_descriptions_are_short_and_header_safe() -> None:
    hostile = ['evil"\r\nset-cookie: x', "a" * 500, "\\", "b", "c"]
    text = describe_refusal(hostile, [AUDIENCE])
    assert all(" " <= c <= "~" for c in text)
    assert '"' not in text and "\\" not in text and len(text) < 400
    assert "and 2 more" in text
    assert "evil???set-cookie:?x" in text  # control characters and spaces are not passed on
    # The configured side is cut and cleaned the same way, in the list and in the advice.
    configured = describe_refusal([OTHER], ["https://api.test/\x1b[31m" + "p" * 300])
    assert all(" " <= c <= "~" for c in configured) and len(configured) < 400
    assert configured.endswith("resource=https://api.test/?[31m" + "p" * 55 + "...")
    # Everything hostile at once stays bounded.
    worst = describe_refusal(["x" * 9000] * 50, ["y" * 9000] * 50, "api_key")
    assert len(worst) < 700 and "and 47 more" in worst


@pytest.mark.parametrize(
    ("have", "expected", "kind", "description"),
    [
        (
            [OTHER],
            [AUDIENCE],
            "token",
            f"the access token's audience is '{OTHER}'; this API accepts '{AUDIENCE}'; "
            f"request a token with resource={AUDIENCE}",
        ),
        (
            [],
            [AUDIENCE],
            "token",
            f"the access token names no audience; this API accepts '{AUDIENCE}'; "
            f"request a token with resource={AUDIENCE}",
        ),
        (
            [OTHER, "https://third.test"],
            [OTHER + "/v2", AUDIENCE],
            "token",
            f"the access token's audience is one of '{OTHER}', 'https://third.test'; this API "
            f"accepts one of '{AUDIENCE}', '{OTHER}/v2'; request a token for one of them with "
            "resource=",
        ),
        (
            [OTHER],
            [AUDIENCE],
            "api_key",
            f"the API key's audience is '{OTHER}'; this API accepts '{AUDIENCE}'; "
            f"use a key created with --audience {AUDIENCE}",
        ),
        (
            [OTHER],
            [],
            "token",
            f"the access token's audience is '{OTHER}'; this API accepts an audience "
            "(none is configured)",
        ),
    ],
    ids=["token", "no-audience", "lists", "api-key", "unconfigured"],
)
def test_a_refusal_says_which_audience_and_how_to_ask_for_the_right_one(
    have: list[str], expected: list[str], kind: Any, description: str
) -> None:
    assert describe_refusal(have, expected, kind) == description


def test_every_path_gives_the_advice_for_its_credential(stub: StubServer, keys: Keys) -> None:
    advice = f"request a token with resource={AUDIENCE}"
    validator = JwtValidator(
        StaticKeys([pin(verification_key_from_jwk(keys.es.public_jwk()))]),
        issuer=ISSUER,
        audiences=[AUDIENCE],
    )
    jwt = Credential("bearer", sign(keys.es, claims(aud=OTHER)))
    assert_refused(both_ways(Guard(jwt=validator), jwt), f"'{OTHER}'", advice)
    introspected = both_ways(introspecting_guard(stub, audiences=[AUDIENCE]), opaque(OTHER))
    assert_refused(introspected, f"'{OTHER}'", advice)
    stub.routes["/api-keys/verify"] = (200, {}, {**KEY_ANSWER, "aud": OTHER})
    try:
        verifier = RemoteApiKeyVerifier(stub.base_url + "/api-keys/verify", cache_seconds=0)
        key = Credential("api_key", generate_api_key("live").text)
        bound = both_ways(Guard(api_keys=verifier, audiences=[AUDIENCE]), key)
        assert_refused(bound, "the API key's audience", f"--audience {AUDIENCE}")
    finally:
        stub.routes["/api-keys/verify"] = (200, {}, KEY_ANSWER)


@pytest.mark.parametrize("adapter", ["asgi", "flask"])
def test_adapters_answer_a_wrong_audience_with_rfc6750(stub: StubServer, adapter: str) -> None:
    guard = introspecting_guard(stub, audiences=[AUDIENCE])
    serving = wsgi_server(flask_app(guard)) if adapter == "flask" else asgi_server(asgi_app(guard))
    with serving as base:
        for aud, status in ((AUDIENCE, 200), (OTHER, 401), (DROP, 401)):
            token = opaque(aud).value
            response = httpx.get(
                base + "/orders", headers={"authorization": f"Bearer {token}"}, timeout=10
            )
            assert response.status_code == status, response.text
            if status == 401:
                assert response.json()["error"] == "invalid_token"
                challenge = response.headers["www-authenticate"]
                assert 'error="invalid_token"' in challenge and repr(AUDIENCE) in challenge
