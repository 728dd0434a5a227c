"""The device grant's protocol (RFC 8628 §3) on in-memory stores and a frozen clock: what the
device is told at each poll, what the person's decision does, and that a code gives tokens once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

import pytest

from tests.oauth.protocol import AUDIENCE, ISSUER, MemoryGrant, memory_grant_deps
from tests.support import OFFERED, token_request
from tokensmith.accounts.sessions import Session
from tokensmith.accounts.users import User
from tokensmith.core.clock import FrozenClock
from tokensmith.core.secrets import fingerprint, keyed_hash
from tokensmith.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    SlowDown,
    UnauthorizedClient,
)
from tokensmith.jose.jws import verify_jwt
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.device_approval import DeviceApproval
from tokensmith.oauth.device_authorization import (
    DEVICE_CODE_GRANT,
    DeviceAuthorization,
    DeviceTiming,
)
from tokensmith.oauth.device_code import DeviceCodeGrant
from tokensmith.oauth.device_grants import MAX_POLL_INTERVAL
from tokensmith.oauth.params import Params
from tokensmith.oauth.user_codes import (
    USER_CODE_ALPHABET,
    format_user_code,
    new_user_code,
    normalise_user_code,
)

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Device:
    """The three parts of the flow over one set of memory stores."""

    memory: MemoryGrant
    authorization: DeviceAuthorization
    grant: DeviceCodeGrant
    approval: DeviceApproval
    clock: FrozenClock
    session: Session

    async def start(self, client_id: str = "tv", **params: str) -> dict[str, Any]:
        client = await self.memory.stores.clients.get(client_id)
        pairs = [("client_id", client_id), *params.items()]
        request = token_request(Params(pairs))
        answer = await self.authorization.handle(request, client)
        assert answer.event == "device.authorization_issued"
        return dict(answer.body)

    async def poll(self, device_code: str, client_id: str = "tv") -> dict[str, Any]:
        client = await self.memory.stores.clients.get(client_id)
        assert client is not None
        pairs = [("grant_type", DEVICE_CODE_GRANT), ("device_code", device_code)]
        return await self.grant.handle(token_request(Params(pairs)), client)

    async def decide(self, user_code: str, *, approved: bool = True) -> bool:
        found = await self.approval.find(user_code, self.session)
        assert found is not None
        return await self.approval.decide(found, self.session, approved=approved)


@pytest.fixture
async def device(clock: FrozenClock) -> Device:
    memory = memory_grant_deps(clock)
    stores = memory.stores
    now = clock.now()
    await stores.users.add(User("u1", "alice", None, "$argon2id$unused", now - 10, now - 10))
    for client_id, grants in (
        ("tv", (DEVICE_CODE_GRANT, "refresh_token")),
        ("radio", (DEVICE_CODE_GRANT,)),
        ("web", ("authorization_code",)),
    ):
        client = NewClient(
            client_id,
            is_public=True,
            grant_types=grants,
            redirect_uris=("https://app.example.com/cb",) if client_id == "web" else (),
            scope="openid profile api:read",
        ).validated(client_id, None, now, offered=OFFERED)
        await stores.clients.add(client)
    pepper = memory.deps.pepper
    return Device(
        memory,
        DeviceAuthorization(
            grants=stores.device_grants,
            pepper=pepper,
            clock=clock,
            issuer=ISSUER,
            default_audience=AUDIENCE,
            timing=DeviceTiming(expires_in=600, interval=5),
        ),
        DeviceCodeGrant(memory.deps, stores.device_grants),
        DeviceApproval(
            grants=stores.device_grants,
            clients=stores.clients,
            pepper=pepper,
            clock=clock,
            audit=memory.audit,
        ),
        clock,
        Session(b"s" * 32, "u1", now - 30, "pwd", now - 30, now + 3600),
    )


async def refused(call: Any) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await call
    return caught.value


# -- the device authorization response -------------------------------------------------------


async def test_the_response_names_both_codes_where_to_go_and_how_often_to_ask(
    device: Device,
) -> None:
    body = await device.start(scope="openid api:read")
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert body["device_code"].startswith("tsdc_") and len(body["device_code"]) >= 43
    assert body["verification_uri"] == f"{ISSUER}/device"
    assert body["verification_uri_complete"] == f"{ISSUER}/device?user_code={body['user_code']}"
    assert (body["expires_in"], body["interval"]) == (600, 5)
    stored = list(device.memory.stores.tables.device_grants.values())
    assert len(stored) == 1 and stored[0].scope == "api:read openid"
    # Only keyed hashes are stored.
    assert body["device_code"].encode() not in repr(stored).encode()
    assert normalise_user_code(body["user_code"]) not in repr(stored)


async def test_no_scope_asked_is_the_clients_whole_scope(device: Device) -> None:
    await device.start()
    (stored,) = device.memory.stores.tables.device_grants.values()
    assert stored.scope == "api:read openid profile"


@pytest.mark.parametrize(
    ("client_id", "params", "error"),
    [
        ("web", {}, UnauthorizedClient),  # not registered for the device grant
        ("tv", {"scope": "api:write"}, InvalidScope),
        ("tv", {"scope": "openid  api:read"}, InvalidScope),  # malformed
        ("tv", {"resource": "https://elsewhere.example.com"}, InvalidTarget),
        ("tv", {"resource": "not a uri"}, InvalidTarget),
    ],
)
async def test_a_refused_request_stores_nothing(
    device: Device, client_id: str, params: dict[str, str], error: type[OAuthError]
) -> None:
    assert isinstance(await refused(device.start(client_id, **params)), error)
    assert not device.memory.stores.tables.device_grants


async def test_user_codes_never_repeat_among_stored_grants(device: Device) -> None:
    codes = {(await device.start())["user_code"] for _ in range(50)}
    assert len(codes) == 50


# -- polling -----------------------------------------------------------------------------------


async def test_pending_until_approved_then_tokens_once(device: Device) -> None:
    body = await device.start(scope="openid api:read")
    assert isinstance(await refused(device.poll(body["device_code"])), AuthorizationPending)
    device.clock.advance(5)
    assert await device.decide(body["user_code"])
    tokens = await device.poll(body["device_code"])
    assert tokens["scope"] == "api:read openid"
    assert tokens["refresh_token"].startswith("tsrt_")
    key = {device.memory.signing_key.kid: device.memory.signing_key}
    access = verify_jwt(tokens["access_token"], key)[1]
    assert access["sub"] == "u1" and access["client_id"] == "tv"
    id_token = verify_jwt(tokens["id_token"], key)[1]
    assert id_token["sub"] == "u1" and id_token["auth_time"] == device.session.auth_time
    device.clock.advance(5)
    assert isinstance(await refused(device.poll(body["device_code"])), InvalidGrant)
    issued = device.memory.audit.named("token.issued")
    assert [e.detail["grant_type"] for e in issued] == [DEVICE_CODE_GRANT]


async def test_no_refresh_token_without_the_refresh_grant(device: Device) -> None:
    body = await device.start("radio", scope="api:read")
    assert await device.decide(body["user_code"])
    tokens = await device.poll(body["device_code"], "radio")
    assert "refresh_token" not in tokens and "id_token" not in tokens


async def test_polling_too_fast_is_slow_down_and_the_interval_grows(device: Device) -> None:
    body = await device.start()
    code = body["device_code"]
    assert isinstance(await refused(device.poll(code)), AuthorizationPending)
    device.clock.advance(4)
    slow = await refused(device.poll(code))
    assert isinstance(slow, SlowDown) and "10 seconds" in slow.description
    device.clock.advance(5)  # 5 s is no longer enough: the interval is now 10 s
    assert isinstance(await refused(device.poll(code)), SlowDown)
    device.clock.advance(15)  # the interval is 15 s now
    assert isinstance(await refused(device.poll(code)), AuthorizationPending)
    assert len(device.memory.audit.named("device.slow_down")) == 2


async def test_the_interval_grows_no_further_than_a_minute(device: Device) -> None:
    body = await device.start()
    code = body["device_code"]
    assert isinstance(await refused(device.poll(code)), AuthorizationPending)
    for _ in range(30):  # a poller that ignores every slow_down, once a second
        device.clock.advance(1)
        slow = await refused(device.poll(code))
        assert isinstance(slow, SlowDown)
    assert "every 60 seconds" in slow.description
    grant = next(iter(device.memory.stores.tables.device_grants.values()))
    assert grant.poll_interval == MAX_POLL_INTERVAL
    device.clock.advance(59)
    assert isinstance(await refused(device.poll(code)), SlowDown)  # still enforced at the cap
    device.clock.advance(60)
    assert isinstance(await refused(device.poll(code)), AuthorizationPending)


async def test_a_pending_poll_is_routine_and_not_audited(device: Device) -> None:
    pending = await refused(device.poll((await device.start())["device_code"]))
    assert isinstance(pending, AuthorizationPending) and not pending.audited
    assert all(cls.audited for cls in (SlowDown, ExpiredToken, AccessDenied, InvalidGrant))


async def test_a_code_past_its_lifetime_is_expired_token(device: Device) -> None:
    body = await device.start()
    device.clock.advance(600)
    assert isinstance(await refused(device.poll(body["device_code"])), ExpiredToken)
    assert await device.approval.find(body["user_code"], device.session) is None
    assert device.memory.audit.named("device.expired")


async def test_an_approval_not_collected_in_time_is_expired_token(device: Device) -> None:
    body = await device.start()
    assert await device.decide(body["user_code"])
    device.clock.advance(600)
    assert isinstance(await refused(device.poll(body["device_code"])), ExpiredToken)


async def test_a_denied_request_is_access_denied(device: Device) -> None:
    body = await device.start()
    assert await device.decide(body["user_code"], approved=False)
    assert isinstance(await refused(device.poll(body["device_code"])), AccessDenied)
    assert device.memory.audit.named("device.denied")
    assert not device.memory.audit.named("token.issued")


async def test_a_decision_is_made_once(device: Device) -> None:
    body = await device.start()
    found = await device.approval.find(body["user_code"], device.session)
    assert found is not None
    assert await device.approval.decide(found, device.session, approved=False)
    assert not await device.approval.decide(found, device.session, approved=True)
    assert await device.approval.find(body["user_code"], device.session) is None


async def test_of_concurrent_polls_after_approval_one_gets_tokens(device: Device) -> None:
    body = await device.start()
    assert await device.decide(body["user_code"])
    results = await asyncio.gather(
        *(device.poll(body["device_code"]) for _ in range(10)), return_exceptions=True
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, SlowDown | InvalidGrant) for r in results if not isinstance(r, dict))


async def test_another_clients_poll_is_invalid_grant_and_spends_nothing(device: Device) -> None:
    body = await device.start()
    assert await device.decide(body["user_code"])
    assert isinstance(await refused(device.poll(body["device_code"], "radio")), InvalidGrant)
    assert "access_token" in await device.poll(body["device_code"])


@pytest.mark.parametrize("code", ["tsdc_" + "A" * 43, "x" * 500, "' OR '1'='1"])
async def test_an_unknown_device_code_is_invalid_grant(device: Device, code: str) -> None:
    await device.start()
    assert isinstance(await refused(device.poll(code)), InvalidGrant)


@pytest.mark.parametrize("pairs", [[], [("device_code", "")]])
async def test_no_device_code_is_invalid_request(
    device: Device, pairs: list[tuple[str, str]]
) -> None:
    client = await device.memory.stores.clients.get("tv")
    assert client is not None
    request = token_request(Params([("grant_type", DEVICE_CODE_GRANT), *pairs]))
    assert isinstance(await refused(device.grant.handle(request, client)), InvalidRequest)


async def test_a_redeemed_device_code_used_again_revokes_what_it_gave(device: Device) -> None:
    body = await device.start()
    assert await device.decide(body["user_code"])
    tokens = await device.poll(body["device_code"])
    device.clock.advance(30)
    assert isinstance(await refused(device.poll(body["device_code"])), InvalidGrant)
    stores = device.memory.stores
    access = verify_jwt(
        tokens["access_token"], {device.memory.signing_key.kid: device.memory.signing_key}
    )
    issued = await stores.tokens.get_by_jti(access[1]["jti"])
    assert issued is not None and issued.revoked_at is not None
    refresh = await stores.refresh.get(
        keyed_hash(device.memory.deps.pepper, tokens["refresh_token"])
    )
    assert refresh is not None and refresh[1].revoked_at is not None
    assert len(device.memory.audit.named("device.replayed")) == 1
    device.clock.advance(30)  # a third use finds it marked: no second revocation, no second event
    assert isinstance(await refused(device.poll(body["device_code"])), InvalidGrant)
    assert len(device.memory.audit.named("device.replayed")) == 1


@pytest.mark.parametrize("lag", range(8))
async def test_a_replay_racing_the_first_redemption_leaves_no_token_alive(
    device: Device, lag: int
) -> None:
    """Two on-time polls of one approved code, the second ``lag`` steps behind the first: at
    every point of the first one's redemption (before, during and after its commit), at most one
    gets tokens, and none of what was issued is left alive (SECURITY 22's rule)."""
    body = await device.start()
    assert await device.decide(body["user_code"])
    results = await asyncio.gather(
        device.poll(body["device_code"]),
        _lagging(device, body["device_code"], lag),
        return_exceptions=True,
    )
    assert sum(isinstance(r, dict) for r in results) <= 1
    refusals = [r for r in results if not isinstance(r, dict)]
    assert all(isinstance(r, InvalidGrant | SlowDown) for r in refusals), refusals
    if any(isinstance(r, SlowDown) for r in results):
        return  # both came at one instant: the second was too soon, not a second use
    tables = device.memory.stores.tables
    assert all(t.revoked_at is not None for t in tables.issued_tokens.values()), results
    assert all(f.revoked_at is not None for f in tables.refresh_families.values()), results


async def _lagging(device: Device, code: str, lag: int) -> dict[str, Any]:
    for _ in range(lag):
        await asyncio.sleep(0)
    device.clock.advance(5)  # on time: the first poll's interval has passed
    return await device.poll(code)


async def test_a_user_disabled_between_the_redemption_and_the_commit_gets_nothing(
    device: Device,
) -> None:
    users = device.memory.stores.tables.users
    grants = device.memory.stores.device_grants
    redeem = grants.redeem

    async def redeem_then_disable(*args: Any) -> Any:
        redeemed = await redeem(*args)
        users["u1"] = replace(users["u1"], disabled=True)  # the admin acts mid-request
        return redeemed

    body = await device.start()
    assert await device.decide(body["user_code"])
    grants.redeem = redeem_then_disable  # type: ignore[method-assign]
    assert isinstance(await refused(device.poll(body["device_code"])), InvalidGrant)
    assert not device.memory.stores.tables.issued_tokens
    assert not device.memory.stores.tables.refresh_families
    assert not device.memory.audit.named("token.issued")


async def test_a_user_disabled_after_approving_gets_no_tokens(device: Device) -> None:
    body = await device.start()
    assert await device.decide(body["user_code"])
    users = device.memory.stores.tables.users
    users["u1"] = replace(users["u1"], disabled=True)
    assert isinstance(await refused(device.poll(body["device_code"])), InvalidGrant)


# -- the user code -----------------------------------------------------------------------------


def test_user_codes_are_eight_consonants_shown_in_two_halves() -> None:
    assert USER_CODE_ALPHABET == "BCDFGHJKLMNPQRSTVWXZ"
    assert not set(USER_CODE_ALPHABET) & set("AEIOUY0123456789")
    seen = set()
    for _ in range(500):
        code = new_user_code()
        assert len(code) == 8 and set(code) <= set(USER_CODE_ALPHABET)
        seen.update(code)
        shown = format_user_code(code)
        assert shown[4] == "-" and shown.replace("-", "") == code
    assert seen == set(USER_CODE_ALPHABET)  # every letter is drawn


@pytest.mark.parametrize(
    "typed", ["BCDF-GHJK", "bcdfghjk", "bcdf-ghjk", " BCDF GHJK ", "Bc-Df-Gh-Jk", "BCDF\tGHJK"]
)
def test_typed_codes_are_read_in_any_case_with_dashes_and_spaces_ignored(typed: str) -> None:
    assert normalise_user_code(typed) == "BCDFGHJK"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "BCDF-GHJ",
        "BCDF-GHJKL",
        "BCDF-GHJA",
        "BCDF-GHJ1",
        "BCDF_GHJK",
        "\u0412CDF-GHJK",
        "B" * 40,
    ],
)
def test_what_cannot_be_a_user_code_is_refused(typed: str) -> None:
    assert normalise_user_code(typed) is None


async def test_the_code_is_found_however_it_is_typed(device: Device) -> None:
    body = await device.start()
    typed = body["user_code"].lower().replace("-", " ")
    found = await device.approval.find(typed, device.session)
    assert found is not None and found.client.client_id == "tv"


async def test_code_entry_is_audited_by_fingerprint_only(device: Device) -> None:
    client = await device.memory.stores.clients.get("tv")
    answer = await device.authorization.handle(token_request(Params([("client_id", "tv")])), client)
    body = dict(answer.body)
    assert await device.approval.find("BBBB-BBBB", device.session) is None
    assert await device.approval.find(body["user_code"], device.session) is not None
    entered = device.memory.audit.named("device.code_entered")
    assert [e.outcome for e in entered] == ["failure", "success"]
    everything = repr(device.memory.audit.events)
    for secret in (body["user_code"], normalise_user_code(body["user_code"]), "BBBBBBBB"):
        assert str(secret) not in everything
    assert body["device_code"] not in everything
    # The fingerprint is keyed: 20^8 codes could be tried against a plain hash's.
    assert fingerprint(str(normalise_user_code(body["user_code"]))) not in everything
    # The same name at issue and at entry, so the two events can be joined.
    assert entered[1].detail["user_code"] == answer.detail["user_code"]
    assert answer.fingerprint not in (None, body["device_code"])


async def test_deleting_the_client_drops_its_device_grants(device: Device) -> None:
    from tokensmith.oauth.client_removal import delete_client

    await device.start()
    await device.start("radio")
    removal = await delete_client(device.memory.stores, "tv", device.clock.now())
    assert removal.deleted and removal.codes == 1
    remaining = device.memory.stores.tables.device_grants.values()
    assert [grant.client_id for grant in remaining] == ["radio"]
