"""TOKENSMITH_GRANT_TYPES switches a grant off everywhere: not only at /token, but in what the
other grants hand out and in what client registration assumes (runtime/features.py).

A client registered for refresh_token before the switch keeps that grant in its record; with
the grant off, the code exchange must not mint a refresh token nobody can use at /token, that
introspection would still call active, and that a later switch back on would bring to life.
"""

from __future__ import annotations

import re
from typing import Any, cast

import httpx
import pytest

from tests.oauth.protocol import MemoryGrant, memory_grant_deps
from tests.oauth.test_code_exchange_protocol import code_params, new_code, register_app
from tests.support import ServerThread, token_request
from tokensmith.core.clock import FrozenClock
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.grant_types import GrantRegistry
from tokensmith.runtime.features import GrantKit, build_grants, enabled_features
from tokensmith.settings import Settings

pytestmark = pytest.mark.anyio


def registry(grant: MemoryGrant, *names: str) -> GrantRegistry:
    deps = grant.deps
    kit = GrantKit(
        services=cast(Any, None),
        responder=deps.responder,
        policy=deps.policy,
        deps=deps,
        inspector=cast(Any, None),
    )
    return build_grants(enabled_features(names), kit)


@pytest.mark.parametrize(
    ("names", "refreshes"),
    [
        (("authorization_code", "refresh_token"), True),
        (("authorization_code",), False),
        (("authorization_code", "client_credentials"), False),
    ],
)
async def test_the_code_grant_issues_a_refresh_token_only_when_the_refresh_grant_is_on(
    clock: FrozenClock, names: tuple[str, ...], refreshes: bool
) -> None:
    grant = memory_grant_deps(clock)
    client = await register_app(grant, clock)  # registered for refresh_token, before the switch
    assert "refresh_token" in client.grant_types
    code_grant = registry(grant, *names).get("authorization_code")
    assert code_grant is not None
    body = await code_grant.handle(token_request(code_params(await new_code(grant, clock))), client)
    assert "access_token" in body
    assert ("refresh_token" in body) is refreshes
    # Nothing stored that was not handed out (the count of the user's live families).
    families = await grant.stores.refresh.revoke_for_subject("u1", clock.now(), "test")
    assert bool(families) is refreshes


def test_registration_defaults_follow_the_grants_on_offer(clock: FrozenClock) -> None:
    """A public client's default grants are the code flow and refresh; with refresh off, the
    default is the code flow alone, not a refusal of a grant nobody asked for."""
    offered = registry(memory_grant_deps(clock), "authorization_code")
    public = NewClient("spa", is_public=True, redirect_uris=("https://spa.test/cb",))
    assert public.validated("p", None, 0, offered=offered).grant_types == ("authorization_code",)
    with pytest.raises(ValueError, match="unsupported grant type 'refresh_token'"):
        NewClient(
            "spa",
            is_public=True,
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=("https://spa.test/cb",),
        ).validated("p", None, 0, offered=offered)
    confidential = NewClient("svc")  # defaults to client_credentials, which is off
    with pytest.raises(ValueError, match="client_credentials is not on offer"):
        confidential.validated("s", b"x" * 32, 0, offered=offered)
    refresh_only = registry(memory_grant_deps(clock), "refresh_token")
    with pytest.raises(ValueError, match="authorization_code is not on offer"):
        public.validated("p", None, 0, offered=refresh_only)  # not refresh_token alone


def test_with_the_code_flow_off_its_routes_are_gone_and_the_other_pages_keep_their_style(
    settings: Settings, port: int
) -> None:
    """/authorize, /login and /consent go with the grant; /logout stays (OpenID Connect), and
    the stylesheet its page links to must still be served."""
    only = settings.model_copy(update={"grant_types": "client_credentials"})
    with ServerThread(only, port=port) as running, httpx.Client(base_url=running.base_url) as http:
        assert http.get("/authorize", params={"client_id": "x"}).status_code == 404
        assert http.post("/login").status_code == 404
        assert http.post("/consent").status_code == 404
        assert http.post("/par").status_code == 404
        metadata = http.get("/.well-known/openid-configuration").json()
        assert "authorization_endpoint" not in metadata
        assert "pushed_authorization_request_endpoint" not in metadata
        assert "require_pushed_authorization_requests" not in metadata
        assert "code_challenge_methods_supported" not in metadata
        assert metadata["response_types_supported"] == []
        page = http.get("/logout")
        assert page.status_code == 200
        sheets = re.findall(r'href="(/static/[^"]+)"', page.text)
        assert sheets
        for sheet in sheets:
            assert http.get(sheet).status_code == 200, sheet
