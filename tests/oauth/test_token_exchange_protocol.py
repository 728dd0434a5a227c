"""The token exchange grant (RFC 8693) on in-memory stores and a FrozenClock: no server.

Subject and actor tokens are issued by the same responder and key the grant verifies against,
so every refusal here is the grant's own judgement of a token that is otherwise genuine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pytest

from tests.oauth.protocol import AUDIENCE, ISSUER, MemoryGrant, memory_grant_deps
from tests.support import OFFERED, token_request, verify_both
from tokensmith.accounts.users import User
from tokensmith.apikeys.verifier import ApiKeyVerifier
from tokensmith.core.clock import FrozenClock
from tokensmith.core.secrets import keyed_hash
from tokensmith.errors import OAuthError
from tokensmith.jose.jws import sign_jwt
from tokensmith.jose.keys import SigningKey, VerificationKey, generate_signing_key
from tokensmith.oauth.access_tokens import TokenContext
from tokensmith.oauth.clients import Client, NewClient, generate_client_id
from tokensmith.oauth.exchange_policy import (
    ACCESS_TOKEN_TYPE,
    API_KEY_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    JWT_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT,
    TXN_TOKEN_TYPE_URN,
    ExchangePolicy,
    parse_policy,
)
from tokensmith.oauth.exchange_subjects import TokenReader
from tokensmith.oauth.grants import Consent
from tokensmith.oauth.introspection import TokenInspector
from tokensmith.oauth.params import Params
from tokensmith.oauth.token_exchange import ExchangeSettings, TokenExchangeGrant
from tokensmith.oauth.tokens import IssuedToken

ORDERS = "https://orders.example.com"
BILLING = "https://billing.example.com"
TRUST = "https://trust.example"

pytestmark = pytest.mark.anyio


@dataclass
class Bench:
    grant: TokenExchangeGrant
    memory: MemoryGrant
    clock: FrozenClock

    async def client(
        self,
        name: str,
        *,
        policy: dict[str, Any] | None = None,
        grants: tuple[str, ...] = (TOKEN_EXCHANGE_GRANT, "client_credentials"),
        scope: str = "api:read api:write",
        token_format: str = "jwt",
    ) -> Client:
        client = NewClient(
            name,
            grant_types=grants,
            scope=scope,
            access_token_format=token_format,  # type: ignore[arg-type]
            allowed_resources=(ORDERS,),
            token_exchange=policy,
        ).validated(generate_client_id(), b"h" * 32, self.clock.now(), offered=OFFERED)
        await self.memory.stores.clients.add(client)
        return client

    async def access_token(
        self,
        client: Client,
        subject: str = "user-1",
        *,
        scope: str = "api:read api:write",
        audience: tuple[str, ...] = (AUDIENCE,),
        lifetime: int = 300,
        claims: dict[str, Any] | None = None,
    ) -> str:
        ctx = TokenContext(
            client=client,
            subject=subject,
            scope=frozenset(scope.split()),
            audience=audience,
            lifetime=lifetime,
            grant_type="client_credentials",
            claims=claims or {},
        )
        body = await self.memory.deps.responder.respond(token_request(Params()), ctx)
        return str(body["access_token"])

    async def exchange(self, client: Client, **form: str | list[str]) -> dict[str, Any]:
        pairs: list[tuple[str, str]] = [("grant_type", TOKEN_EXCHANGE_GRANT)]
        for name, value in form.items():
            values = value if isinstance(value, list) else [value]
            pairs.extend((name, v) for v in values)
        return await self.grant.handle(token_request(Params(pairs)), client)

    async def refused(self, client: Client, error: str, **form: str | list[str]) -> OAuthError:
        with pytest.raises(OAuthError) as refused:
            await self.exchange(client, **form)
        assert refused.value.error == error, refused.value.detail
        return refused.value

    def claims(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        return verify_both(token, self.memory.signing_key)


def bench(clock: FrozenClock, **settings: Any) -> Bench:
    memory = memory_grant_deps(clock)
    key = memory.signing_key
    keys = lambda: {key.kid: VerificationKey(key.kid, key.alg, key.key)}  # noqa: E731
    inspector = TokenInspector(
        issuer=ISSUER,
        clients=memory.stores.clients,
        tokens=memory.stores.tokens,
        refresh=memory.stores.refresh,
        verification_keys=keys,
        pepper=memory.deps.pepper,
        clock=clock,
        leeway=60,
    )
    reader = TokenReader(
        issuer=ISSUER,
        inspector=inspector,
        users=memory.stores.users,
        consents=memory.stores.consents,
        keys=ApiKeyVerifier(memory.stores.api_keys, b"p" * 32, clock, max_staleness=0),
        verification_keys=keys,
        clock=clock,
        leeway=60,
    )
    grant = TokenExchangeGrant(
        reader=reader,
        responder=memory.deps.responder,
        policy=memory.deps.policy,
        settings=ExchangeSettings(**{"txn_audience": TRUST, **settings}),
        issuer=ISSUER,
        signing_key=lambda: key,
        clock=clock,
        audit=memory.audit,
    )
    return Bench(grant, memory, clock)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_800_000_000)


@pytest.fixture
def b(clock: FrozenClock) -> Bench:
    return bench(clock)


def subject(token: str, kind: str = ACCESS_TOKEN_TYPE) -> dict[str, str]:
    return {"subject_token": token, "subject_token_type": kind}


def actor(token: str, kind: str = ACCESS_TOKEN_TYPE) -> dict[str, str]:
    return {"actor_token": token, "actor_token_type": kind}


# -- impersonation and delegation -----------------------------------------------------------


async def test_impersonation_keeps_the_subject_and_narrows(b: Bench) -> None:
    service = await b.client("service")
    token = await b.access_token(service, scope="api:read api:write", lifetime=200)
    body = await b.exchange(service, **subject(token), scope="api:read")
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer"
    assert "refresh_token" not in body
    assert body["expires_in"] == 200  # never past the subject token's remaining life
    header, claims = b.claims(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == "user-1"
    assert claims["scope"] == "api:read"
    assert claims["aud"] == AUDIENCE
    assert claims["client_id"] == service.client_id
    assert "act" not in claims


async def test_lifetime_follows_the_subjects_remaining_life(b: Bench) -> None:
    service = await b.client("service")
    token = await b.access_token(service, lifetime=300)
    b.clock.advance(250)
    body = await b.exchange(service, **subject(token))
    assert body["expires_in"] == 50


async def test_delegation_names_the_actor(b: Bench) -> None:
    service = await b.client("service")
    user_token = await b.access_token(service, "user-1")
    own = await b.access_token(service, service.client_id)
    body = await b.exchange(service, **subject(user_token), **actor(own))
    _, claims = b.claims(body["access_token"])
    assert claims["sub"] == "user-1"
    assert claims["act"] == {"sub": service.client_id, "client_id": service.client_id}


async def test_a_chain_nests_the_earlier_actors(b: Bench) -> None:
    first = await b.client("first")
    second = await b.client("second", policy={"accept_audiences": [ORDERS]})
    user_token = await b.access_token(first, "user-1", audience=(ORDERS,))
    first_actor = await b.access_token(first, "svc-first")
    delegated = await b.exchange(first, **subject(user_token), **actor(first_actor))
    _, once = b.claims(delegated["access_token"])
    assert once["aud"] == ORDERS and once["act"]["sub"] == "svc-first"

    second_actor = await b.access_token(second, "svc-second")
    again = await b.exchange(second, **subject(delegated["access_token"]), **actor(second_actor))
    _, twice = b.claims(again["access_token"])
    assert twice["sub"] == "user-1"
    assert twice["act"] == {
        "sub": "svc-second",
        "client_id": second.client_id,
        "act": {"sub": "svc-first", "client_id": first.client_id},
    }


async def test_a_chain_too_long_is_refused(b: Bench) -> None:
    service = await b.client("service")
    act: dict[str, Any] = {"sub": "a0"}
    for n in range(1, 5):
        act = {"sub": f"a{n}", "act": act}
    token = await b.access_token(service, claims={"act": act})
    own = await b.access_token(service, service.client_id)
    await b.refused(service, "invalid_request", **subject(token), **actor(own))


async def test_opaque_tokens_keep_act_in_their_record(b: Bench) -> None:
    service = await b.client("service", token_format="opaque")
    user_token = await b.access_token(service, "user-1")
    own = await b.access_token(service, service.client_id)
    body = await b.exchange(service, **subject(user_token), **actor(own))
    assert body["access_token"].startswith("tsat_")
    record = await b.memory.stores.tokens.get_by_hash(
        keyed_hash(b.memory.deps.pepper, body["access_token"])
    )
    assert record is not None and record.claims is not None
    assert record.claims["act"]["sub"] == service.client_id
    # ... and an opaque subject is read back with its chain
    again = await b.exchange(service, **subject(body["access_token"]), **actor(own))
    record = await b.memory.stores.tokens.get_by_hash(
        keyed_hash(b.memory.deps.pepper, again["access_token"])
    )
    assert record is not None and record.claims is not None
    assert record.claims["act"]["act"]["sub"] == service.client_id


async def test_jwt_is_issued_when_asked_for(b: Bench) -> None:
    service = await b.client("service", token_format="opaque")
    token = await b.access_token(service)
    body = await b.exchange(service, **subject(token), requested_token_type=JWT_TOKEN_TYPE)
    assert body["issued_token_type"] == JWT_TOKEN_TYPE
    assert b.claims(body["access_token"])[1]["sub"] == "user-1"


async def test_an_id_token_is_a_subject(b: Bench) -> None:
    service = await b.client("service", policy={"subject_types": ["access_token", "id_token"]})
    await b.memory.stores.users.add(User("user-9", "ann", None, "x", 1, 1))
    id_token = b.memory.deps.responder.id_tokens.issue(
        client_id=service.client_id, subject="user-9", auth_time=None, nonce=None, access_token="a"
    )
    # An ID token grants only what its user consented to for the client (SECURITY.md case 135).
    await b.refused(service, "invalid_scope", **subject(id_token, ID_TOKEN_TYPE), scope="api:read")
    await b.memory.stores.consents.put(Consent("user-9", service.client_id, "api:read", 1))
    body = await b.exchange(service, **subject(id_token, ID_TOKEN_TYPE), scope="api:read")
    _, claims = b.claims(body["access_token"])
    assert claims["sub"] == "user-9" and claims["scope"] == "api:read"
    assert claims["aud"] == AUDIENCE
    # an ID token as access token, an access token as ID token: each is the wrong kind
    await b.refused(service, "invalid_grant", **subject(id_token))
    access = await b.access_token(service)
    await b.refused(service, "invalid_grant", **subject(access, ID_TOKEN_TYPE))
    # a disabled user's, and then one past its life
    await b.memory.stores.users.add(User("user-off", "bob", None, "x", 1, 1, disabled=True))
    disabled = b.memory.deps.responder.id_tokens.issue(
        client_id=service.client_id,
        subject="user-off",
        auth_time=None,
        nonce=None,
        access_token="a",
    )
    await b.refused(service, "invalid_grant", **subject(disabled, ID_TOKEN_TYPE))
    b.clock.advance(301)
    await b.refused(service, "invalid_grant", **subject(id_token, ID_TOKEN_TYPE))


# -- scope and targets ----------------------------------------------------------------------


async def test_a_wider_scope_is_invalid_scope(b: Bench) -> None:
    service = await b.client("service")
    token = await b.access_token(service, scope="api:read")
    await b.refused(service, "invalid_scope", **subject(token), scope="api:read api:write")
    await b.refused(service, "invalid_scope", **subject(token), scope='bad"scope')


async def test_audience_narrows_or_names_what_the_policy_allows(b: Bench) -> None:
    service = await b.client("service", policy={"audiences": [BILLING]})
    token = await b.access_token(service, audience=(AUDIENCE, ORDERS))
    narrowed = await b.exchange(service, **subject(token), audience=ORDERS)
    assert b.claims(narrowed["access_token"])[1]["aud"] == ORDERS
    other = await b.exchange(service, **subject(token), resource=BILLING)
    assert b.claims(other["access_token"])[1]["aud"] == BILLING
    both = await b.exchange(service, **subject(token), audience=[ORDERS, BILLING])
    assert b.claims(both["access_token"])[1]["aud"] == [ORDERS, BILLING]
    for target in ("https://evil.example.com", ORDERS + "/", "orders"):
        await b.refused(service, "invalid_target", **subject(token), audience=target)
        await b.refused(service, "invalid_target", **subject(token), resource=target)


# -- what is refused --------------------------------------------------------------------------


async def test_expired_revoked_foreign_and_garbage_subjects_are_invalid_grant(b: Bench) -> None:
    service = await b.client("service")
    expired = await b.access_token(service, lifetime=10)
    revoked = await b.access_token(service)
    b.clock.advance(10)
    await b.refused(service, "invalid_grant", **subject(expired))
    _, claims = b.claims(revoked)
    # revoked by jti, as /revoke records a JWT that was never stored
    await b.memory.stores.tokens.record_revocation(
        IssuedToken(
            claims["jti"], service.client_id, "user-1", "", AUDIENCE, "jwt", 1, claims["exp"]
        ),
        b.clock.now(),
    )
    await b.refused(service, "invalid_grant", **subject(revoked))
    foreign = sign_jwt(
        generate_signing_key("ES256"),
        {"iss": ISSUER, "sub": "u", "aud": AUDIENCE, "exp": b.clock.now() + 60},
        typ="at+jwt",
    )
    for bad in (foreign, "garbage", "a.b.c", "tsat_unknown", "x" * 5000):
        await b.refused(service, "invalid_grant", **subject(bad))


async def test_another_issuers_claims_on_our_key_are_refused(b: Bench) -> None:
    service = await b.client("service")
    now = b.clock.now()
    base = {
        "iss": ISSUER,
        "sub": "u",
        "aud": AUDIENCE,
        "exp": now + 60,
        "iat": now,
        "jti": "j1",
        "client_id": service.client_id,
    }
    key: SigningKey = b.memory.signing_key
    cases = [
        sign_jwt(key, {**base, "iss": ISSUER + ".evil"}, typ="at+jwt"),
        sign_jwt(key, {**base, "iat": now + 3600}, typ="at+jwt"),
        sign_jwt(key, base, typ="JWT"),
        sign_jwt(key, {**base, "aud": 5}, typ="at+jwt"),
    ]
    for token in cases:
        await b.refused(service, "invalid_grant", **subject(token))


async def test_tokens_of_other_clients_are_refused_unless_accepted(b: Bench) -> None:
    issuer_app = await b.client("app")
    service = await b.client("service")
    token = await b.access_token(issuer_app, audience=(ORDERS,))
    await b.refused(service, "invalid_grant", **subject(token))
    serving = await b.client("orders", policy={"accept_audiences": [ORDERS]})
    assert (await b.exchange(serving, **subject(token)))["issued_token_type"] == ACCESS_TOKEN_TYPE
    # the client that issued a token is deleted: its tokens are dead
    await b.memory.stores.clients.delete(issuer_app.client_id)
    await b.refused(serving, "invalid_grant", **subject(token))


TOKEN = "<the subject token>"
SUBJECT = {"subject_token": TOKEN, "subject_token_type": ACCESS_TOKEN_TYPE}


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"subject_token": TOKEN},
        {"subject_token_type": ACCESS_TOKEN_TYPE},
        {"subject_token": TOKEN, "subject_token_type": "urn:x:other"},
        {"subject_token": TOKEN, "subject_token_type": API_KEY_TOKEN_TYPE},  # not in its policy
        {**SUBJECT, "actor_token": TOKEN},
        {**SUBJECT, "actor_token_type": ACCESS_TOKEN_TYPE},
        {**SUBJECT, "actor_token": TOKEN, "actor_token_type": API_KEY_TOKEN_TYPE},
        {**SUBJECT, "requested_token_type": "urn:ietf:params:oauth:token-type:saml2"},
        {**SUBJECT, "requested_token_type": TXN_TOKEN_TYPE_URN, "request_context": "{"},
    ],
)
async def test_bad_requests_are_invalid_request(b: Bench, form: dict[str, str]) -> None:
    service = await b.client("service", policy={"txn_tokens": True})
    token = await b.access_token(service)
    full = {name: token if value == TOKEN else value for name, value in form.items()}
    await b.refused(service, "invalid_request", **full)


async def test_delegation_only_and_the_actor_allowlist(b: Bench) -> None:
    service = await b.client(
        "service", policy={"allow_impersonation": False, "actors": ["svc-trusted"]}
    )
    token = await b.access_token(service)
    await b.refused(service, "invalid_request", **subject(token))
    stranger = await b.access_token(service, "svc-other")
    await b.refused(service, "invalid_request", **subject(token), **actor(stranger))
    trusted = await b.access_token(service, "svc-trusted")
    body = await b.exchange(service, **subject(token), **actor(trusted))
    assert b.claims(body["access_token"])[1]["act"]["sub"] == "svc-trusted"
    b.clock.advance(300)
    await b.refused(service, "invalid_grant", **subject(token), **actor(trusted))


async def test_a_revoked_opaque_subject_is_invalid_grant(b: Bench) -> None:
    service = await b.client("service", token_format="opaque")
    token = await b.access_token(service)
    record = await b.memory.stores.tokens.get_by_hash(keyed_hash(b.memory.deps.pepper, token))
    assert record is not None
    assert (await b.exchange(service, **subject(token)))["token_type"] == "Bearer"
    await b.memory.stores.tokens.revoke(record.jti, b.clock.now())
    await b.refused(service, "invalid_grant", **subject(token))


async def test_a_malformed_stored_policy_fails_closed(b: Bench) -> None:
    service = await b.client("service")
    token = await b.access_token(service)
    broken = replace(service, token_exchange={"audiences": "everything"})
    await b.refused(broken, "unauthorized_client", **subject(token))


async def test_an_expired_actor_is_invalid_grant(b: Bench) -> None:
    service = await b.client("service")
    token = await b.access_token(service, lifetime=600)
    short = await b.access_token(service, "svc", lifetime=5)
    b.clock.advance(5)
    await b.refused(service, "invalid_grant", **subject(token), **actor(short))


# -- transaction tokens ---------------------------------------------------------------------


async def test_a_txn_token_has_the_drafts_shape(b: Bench) -> None:
    gateway = await b.client("gateway", policy={"txn_tokens": True})
    token = await b.access_token(gateway, scope="orders:read api:read")
    body = await b.exchange(
        gateway,
        **subject(token),
        requested_token_type=TXN_TOKEN_TYPE_URN,
        audience=TRUST,
        scope="orders:read",
        request_context='{"req_ip": "192.0.2.7"}',
        request_details='{"txn": "abc-123", "order": "42"}',
    )
    assert body["issued_token_type"] == TXN_TOKEN_TYPE_URN
    assert body["token_type"] == "N_A"
    assert body["expires_in"] == 60
    header, claims = b.claims(body["access_token"])
    assert header["typ"] == "txntoken+jwt"
    assert claims["aud"] == TRUST and claims["iss"] == ISSUER
    assert claims["txn"] == "abc-123"
    assert claims["sub_id"] == {"format": "opaque", "id": "user-1"}
    assert claims["purp"] == "orders:read"
    assert claims["rctx"] == {"req_ip": "192.0.2.7"}
    assert claims["azd"] == {"order": "42"}
    assert claims["exp"] - claims["iat"] == 60
    # without details, a fresh transaction id each time
    ids = set()
    for _ in range(2):
        again = await b.exchange(gateway, **subject(token), requested_token_type=TXN_TOKEN_TYPE_URN)
        ids.add(b.claims(again["access_token"])[1]["txn"])
    assert len(ids) == 2


async def test_txn_tokens_are_refused_where_not_allowed(clock: FrozenClock) -> None:
    b = bench(clock)
    plain = await b.client("plain")
    token = await b.access_token(plain)
    txn = {"requested_token_type": TXN_TOKEN_TYPE_URN}
    await b.refused(plain, "unauthorized_client", **subject(token), **txn)
    gateway = await b.client("gateway", policy={"txn_tokens": True})
    token = await b.access_token(gateway)
    await b.refused(gateway, "invalid_target", **subject(token), **txn, audience=ORDERS)
    too_long = json.dumps({"a": "x" * 5000})
    for bad in (
        too_long,
        "[1]",
        "not json",
        "e3t9",
        "@@@",
        '{"a":' * 10 + "1" + "}" * 10,
        "[" * 3000,
    ):
        await b.refused(gateway, "invalid_request", **subject(token), **txn, request_context=bad)
    await b.refused(
        gateway, "invalid_request", **subject(token), **txn, request_details='{"txn": "a b"}'
    )
    unconfigured = bench(clock, txn_audience=None)
    gateway = await unconfigured.client("gateway", policy={"txn_tokens": True})
    token = await unconfigured.access_token(gateway)
    await unconfigured.refused(gateway, "invalid_request", **subject(token), **txn)


# -- audit ------------------------------------------------------------------------------------


async def test_every_exchange_is_audited(b: Bench) -> None:
    service = await b.client("service")
    token = await b.access_token(service)
    own = await b.access_token(service, "svc")
    await b.exchange(service, **subject(token), **actor(own), scope="api:read")
    await b.refused(service, "invalid_scope", **subject(token), scope="admin")
    events = b.memory.audit.named("token.exchanged")
    assert [e.outcome for e in events] == ["success", "failure"]
    ok, refused = events
    assert ok.subject == "user-1" and ok.client_id == service.client_id
    assert ok.detail["actor"] == "svc" and ok.detail["scope"] == "api:read"
    assert ok.detail["audience"] == AUDIENCE
    assert refused.detail["error"] == "invalid_scope"
    assert token not in repr(events)


# -- the policy -------------------------------------------------------------------------------


def test_the_policy_is_validated() -> None:
    assert parse_policy({}) == ExchangePolicy()
    full = {
        "audiences": [ORDERS],
        "accept_audiences": [BILLING],
        "subject_types": ["api_key"],
        "actors": ["svc"],
        "allow_impersonation": False,
        "txn_tokens": True,
    }
    assert parse_policy(full).to_json() == full
    for bad in (
        {"audiences": "x"},
        {"audiences": ["orders"]},
        {"audiences": [ORDERS + "#f"]},
        {"subject_types": ["saml"]},
        {"subject_types": []},
        {"txn_tokens": "yes"},
        {"other": 1},
        {"allow_impersonation": False, "actors": []},
        {"audiences": [f"https://a{n}.example" for n in range(40)]},
    ):
        with pytest.raises(ValueError):
            parse_policy(bad)


def test_registration_takes_a_policy_only_with_the_grant() -> None:
    def register(**fields: Any) -> Client:
        return NewClient("c", **fields).validated("id", b"h" * 32, 0, offered=OFFERED)

    client = register(grant_types=(TOKEN_EXCHANGE_GRANT,), token_exchange={"audiences": [ORDERS]})
    assert client.token_exchange is not None
    assert client.token_exchange["audiences"] == [ORDERS]
    with pytest.raises(ValueError, match="grant"):
        register(grant_types=("client_credentials",), token_exchange={})
    with pytest.raises(ValueError, match="public"):
        register(is_public=True, grant_types=(TOKEN_EXCHANGE_GRANT,))
    with pytest.raises(ValueError):
        register(grant_types=(TOKEN_EXCHANGE_GRANT,), token_exchange={"txn_tokens": 1})
