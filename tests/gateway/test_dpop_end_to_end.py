"""DPoP through the gateway end to end: the real server issues a DPoP-bound token to the client
kit, the gateway checks the kit's proofs against its public URL, and the upstream gets the
internal JWT and no proof."""

# ruff: noqa: F811

from __future__ import annotations

from pathlib import Path

import httpx

from tests.client.conftest import (  # noqa: F401  (fixtures, found by name)
    Registrar,
    alice,
    http,
    port,
    register,
    server,
    settings,
)
from tests.gateway.conftest import echo, gateway_config
from tests.guard.servers import asgi_server
from tests.support import ServerThread, listening_socket
from tokensmith.client import ClientCredentialsAuth
from tokensmith.gateway import build_gateway
from tokensmith.gateway.config import parse_config
from tokensmith.oauth.clients import NewClient
from tokensmith.web.connection import proxy_limits
from tokensmith.web.server import server_options


def test_a_bound_client_credentials_token_through_the_gateway(
    server: ServerThread, register: Registrar, tmp_path: Path
) -> None:
    gateway_client = register(NewClient("gateway", grant_types=("client_credentials",)))
    worker = register(NewClient("worker", grant_types=("client_credentials",), scope="api:read"))
    sock = listening_socket()
    public = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with asgi_server(echo) as upstream:
        document = gateway_config(server, upstream, tmp_path, public_url=public)
        document["authorization_server"] = {
            "issuer": server.base_url,
            "client_id": gateway_client.client_id,
            "client_secret": gateway_client.secret,
            "jwt_audiences": [server.base_url],
        }
        document["routes"][0]["scopes"] = ["api:read"]
        config = parse_config(document, tmp_path)
        gateway = build_gateway(config)
        options = server_options(proxy_limits(config))
        with (
            asgi_server(gateway, sock=sock, **options),
            ClientCredentialsAuth.for_issuer(
                server.base_url, worker.client_id, client_secret=worker.secret, scope="api:read"
            ) as auth,
        ):
            response = httpx.get(public + "/orders/1?x=2", auth=auth, timeout=10)
            assert response.status_code == 200, response.text
            assert auth.tokens.current is not None
            assert auth.tokens.current.token_type == "DPoP"
            seen = dict(response.json()["headers"])
            assert "dpop" not in seen
            assert auth.tokens.current.value not in str(response.json())
            stolen = httpx.get(
                public + "/orders/1",
                headers={"authorization": f"Bearer {auth.tokens.current.value}"},
            )
            assert stolen.status_code == 401
