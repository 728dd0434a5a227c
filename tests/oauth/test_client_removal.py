"""oauth/client_removal.py on both databases: a deleted client's records are revoked."""

from __future__ import annotations

import pytest

from tests.oauth.test_grant_races import code_params, setup
from tests.support import token_request
from tokensmith.accounts.sessions import Session
from tokensmith.core.secrets import keyed_hash
from tokensmith.oauth.authorization import AuthorizationRequest, issue_code
from tokensmith.oauth.client_removal import delete_client
from tokensmith.oauth.code_exchange import exchange_code
from tokensmith.oauth.pkce import s256
from tokensmith.runtime.services import Services

# About storage end to end: on both databases.
pytestmark = [pytest.mark.anyio, pytest.mark.backends("sqlite", "postgresql")]


async def test_deleting_a_client_revokes_its_families_tokens_and_codes(
    services: Services,
) -> None:
    deps, client, code = await setup(services)
    body = await exchange_code(deps, client, token_request(code_params(code)))
    now = services.clock.now()
    request = AuthorizationRequest("c1", "https://app.example.com/cb", "api", None, s256("v" * 50))
    session = Session(b"s" * 32, "u1", now, "pwd", now, now + 3600)
    pending = await issue_code(services.codes, services.master.pepper, now, request, "u1", session)

    removal = await delete_client(services, "c1", now)
    assert (removal.deleted, removal.families, removal.tokens, removal.codes) == (True, 1, 1, 2)
    assert await services.clients.get("c1") is None
    found = await services.refresh.get(keyed_hash(services.master.pepper, body["refresh_token"]))
    assert found is not None and found[1].revoked_reason == "client_deleted"
    assert await services.codes.get(keyed_hash(services.master.pepper, pending)) is None
    assert await services.protocol.inspector.active_token(body["access_token"]) is None
    # Running it again finds nothing more to do, and says the client was not there.
    again = await delete_client(services, "c1", now)
    assert (again.deleted, again.families, again.tokens, again.codes) == (False, 0, 0, 0)
