"""What a grant costs in database round trips, counted on the wire (issue 21).

Each round trip to PostgreSQL is latency a request pays in full: with 200 ms between a node and
its database, a refresh of 45 round trips took 9 s. Counted here by a proxy between the server
and PostgreSQL, through a real server, after a first request has warmed the caches (the client,
the prepared statements) as a running node's are.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.faults import FaultProxy
from tests.oauth.conftest import Registered
from tests.oauth.test_authorization import refresh, tokens_for
from tests.support import POSTGRES_URL, ServerThread
from tokensmith.settings import Settings

pytestmark = [pytest.mark.usefixtures("alice"), pytest.mark.backends("postgresql")]


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy(5432) as running:
        yield running


@pytest.fixture
def settings(settings: Settings, proxy: FaultProxy) -> Settings:
    url = POSTGRES_URL.replace("127.0.0.1:5432", proxy.url_port)
    return settings.model_copy(update={"database_url": url})


def test_a_refresh_takes_a_handful_of_round_trips(
    server: ServerThread, http: httpx.Client, web_app: Registered, proxy: FaultProxy
) -> None:
    token = tokens_for(server, http, web_app)["refresh_token"]
    counts = []
    for _ in range(6):
        proxy.sent = 0
        answer = refresh(http, web_app, token)
        assert answer.status_code == 200
        token = answer.json()["refresh_token"]
        counts.append(proxy.sent)
    # The read of token, family and user; BEGIN, the claim, the successor, the access token's
    # record, COMMIT. The fewest seen: a statement's first use on a connection costs one more
    # (asyncpg prepares it), and audit events are written in batches beside the requests.
    assert min(counts) <= 6, counts
