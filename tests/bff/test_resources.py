"""An upstream with a ``resource`` (RFC 8707): the BFF asks for it at login and at every refresh,
so the tokens it attaches name that API as their audience, and an API that accepts only its own
audience takes them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.bff.conftest import SpaUser, Stack, bff_document, recording_api, running_bff
from tests.guard.servers import asgi_server
from tests.oauth.conftest import Registrar
from tests.support import ServerThread, listening_socket
from tokensmith.core.clock import FrozenClock
from tokensmith.core.secrets import b64url_json
from tokensmith.oauth.clients import NewClient

RESOURCE = "https://orders.example"


def test_the_tokens_name_the_upstreams_resource(
    server: ServerThread, register: Registrar, alice: str, tmp_path: Path
) -> None:
    sock = listening_socket()
    origin = f"http://localhost:{sock.getsockname()[1]}"
    client = register(
        NewClient(
            "SPA (BFF)",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(origin + "/bff/callback",),
            scope="openid profile email orders:read",
            allowed_resources=(RESOURCE,),
        )
    )
    (tmp_path / "client-secret").write_text(client.secret or "")
    seen: list[dict[str, Any]] = []
    calls: list[str] = []
    clock = FrozenClock(time.time())
    with asgi_server(recording_api(server.base_url, seen, audience=RESOURCE)) as upstream:
        document = bff_document(origin, server.base_url, client.client_id, upstream, tmp_path)
        document["upstream"][0]["resource"] = RESOURCE
        with running_bff(document, tmp_path, clock, calls, sock) as (_, bff):
            stack = Stack(server, origin, bff, client, seen, calls, clock, tmp_path)
            user = SpaUser(stack)
            url, _ = user.start_login()
            # Pushed (RFC 9126) with the request: the token's audience below shows it arrived.
            assert "request_uri" in parse_qs(urlsplit(url).query)
            user.sign_in()
            assert user.api("GET", "/bff/api/orders").status_code == 200
            record = stack.record(user.session or "")
            assert record is not None
            assert RESOURCE in b64url_json(record.access_token.split(".")[1])["aud"]

            stack.rewrite(user.session or "", access_expires_at=clock.now())
            assert user.api("GET", "/bff/api/orders").status_code == 200  # after a refresh
            assert calls == ["authorization_code", "refresh_token"]
            renewed = stack.record(user.session or "")
            assert renewed is not None and renewed.access_token != record.access_token
            assert RESOURCE in b64url_json(renewed.access_token.split(".")[1])["aud"]
            user.http.close()
