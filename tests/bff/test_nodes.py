"""Two BFF nodes behind one origin, sharing sessions through the real local Redis: a session
signed in at one is served by the other, and concurrent requests at both with an expiring
access token present the refresh token once (a Redis lock, then the record read again)."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from tests.bff.conftest import SpaUser, Stack, bff_document, running_bff
from tests.support import REDIS_URL


def test_two_nodes_share_sessions_and_refresh_once(
    stack: Stack, user: SpaUser, redis_prefix: str, tmp_path: Path
) -> None:
    upstream = stack.bff.config.upstreams[0].url.removesuffix("/orders")
    shared = {"store": REDIS_URL, "redis_key_prefix": redis_prefix}
    document = bff_document(
        stack.base, stack.server.base_url, stack.client.client_id, upstream, tmp_path, **shared
    )
    calls: list[str] = []
    with (
        running_bff(document, tmp_path, stack.clock, calls) as (first, node_a),
        running_bff(document, tmp_path, stack.clock, calls) as (second, _),
    ):
        user.stack = Stack(
            stack.server, stack.base, node_a, stack.client, [], calls, stack.clock, tmp_path
        )
        # The browser reaches node A at the origin's address; node B sits behind it too.
        user.stack.base = first
        user.sign_in()
        assert calls == ["authorization_code"]
        cookie = user.session or ""
        user.stack.rewrite(cookie, access_expires_at=stack.clock.now() + 5)
        before = user.stack.record(cookie)
        assert before is not None

        def call(index: int) -> int:
            base = first if index % 2 else second
            headers = {**user.headers(), "x-tokensmith-csrf": "1"}
            return user.http.get(base + "/bff/api/orders", headers=headers).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(call, range(8)))
        assert statuses == [200] * 8
        assert calls == ["authorization_code", "refresh_token"]
        after = user.stack.record(cookie)
        assert after is not None and after.refresh_token != before.refresh_token
        assert stack.introspect(after.refresh_token or "")["active"] is True
