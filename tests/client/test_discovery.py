"""Discovery (RFC 8414 §3): the metadata's issuer must be the URL asked; plain http only on
loopback, for the issuer and for every endpoint the metadata names."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.guard.servers import StubServer
from tests.support import ServerThread, refused_port
from tokensmith.client import DiscoveryError, ServerMetadata, discover, discover_async
from tokensmith.client.discovery import check_url, metadata_urls
from tokensmith.client.errors import DiscoveryUnavailable


def test_a_real_server_is_discovered(server: ServerThread) -> None:
    found = discover(server.base_url)
    assert found.issuer == server.base_url
    assert found.token_endpoint == server.base_url + "/token"
    assert found.authorization_endpoint == server.base_url + "/authorize"
    assert found.jwks_uri and found.revocation_endpoint
    # One trailing slash on the URL asked is the only leniency.
    assert discover(server.base_url + "/").issuer == server.base_url


@pytest.mark.anyio
async def test_discovery_for_asyncio(server: ServerThread) -> None:
    found = await discover_async(server.base_url)
    assert found.token_endpoint == server.base_url + "/token"


def serving(document: dict[str, object], status: int = 200) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(document).encode())

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_metadata_naming_another_issuer_is_refused(server: ServerThread) -> None:
    # The real server's own document, asked for under another name (localhost, not 127.0.0.1):
    # what a mix-up would look like.
    other = server.base_url.replace("127.0.0.1", "localhost")
    with pytest.raises(DiscoveryError, match="names another issuer"):
        discover(other)
    for named in ("https://auth.example.com/evil", "https://auth.example.com.evil",
                  "https://auth.example.co", "https://AUTH.example.com"):  # fmt: skip
        doc = {"issuer": named, "token_endpoint": "https://auth.example.com/token"}
        with pytest.raises(DiscoveryError, match="another issuer"):
            discover("https://auth.example.com", http=serving(doc))


def test_plain_http_issuer_other_than_loopback_is_refused() -> None:
    for issuer in ("http://auth.example.com", "http://10.0.0.1", "http://127.example.com",
                   "ftp://auth.example.com", "http://127.0.0.1@evil.example"):  # fmt: skip
        with pytest.raises(DiscoveryError):
            discover(issuer, http=serving({"issuer": issuer}))
    for loopback in (
        "http://127.0.0.1:8000",
        "http://127.1.2.3",
        "http://[::1]:9",
        "http://localhost",
    ):
        assert check_url(loopback, "the issuer") == loopback


def test_an_http_endpoint_in_the_metadata_is_refused() -> None:
    issuer = "https://auth.example.com"
    good = {"issuer": issuer, "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/jwks"}
    assert discover(issuer, http=serving(good)).jwks_uri == f"{issuer}/jwks"
    for name in ("token_endpoint", "authorization_endpoint", "jwks_uri", "revocation_endpoint",
                 "device_authorization_endpoint"):  # fmt: skip
        bad = {**good, name: "http://auth.example.com/x"}
        with pytest.raises(DiscoveryError, match=name):
            discover(issuer, http=serving(bad))


def test_unusable_metadata_is_a_clear_error() -> None:
    issuer = "https://auth.example.com"
    with pytest.raises(DiscoveryError, match="no token_endpoint"):
        discover(issuer, http=serving({"issuer": issuer}))
    with pytest.raises(DiscoveryError, match="answered 500"):
        discover(issuer, http=serving({}, status=500))
    with pytest.raises(DiscoveryError, match="publishes no"):
        discover(issuer, http=serving({}, status=404))
    with pytest.raises(DiscoveryError, match="unreachable"):
        discover("http://127.0.0.1:9")


def test_well_known_urls_follow_both_specifications() -> None:
    assert metadata_urls("https://a.example/tenant/") == (
        "https://a.example/.well-known/oauth-authorization-server/tenant",
        "https://a.example/tenant/.well-known/openid-configuration",
    )


def test_the_openid_location_is_the_fallback() -> None:
    issuer = "https://auth.example.com"
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if "oauth-authorization-server" in request.url.path:
            return httpx.Response(404)
        return httpx.Response(200, json={"issuer": issuer, "token_endpoint": issuer + "/t"})

    found = discover(issuer, http=httpx.Client(transport=httpx.MockTransport(answer)))
    assert isinstance(found, ServerMetadata) and found.token_endpoint == issuer + "/t"
    assert asked == ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]


@pytest.mark.anyio
async def test_an_issuer_that_is_down_or_failing_is_unavailable_not_untrusted() -> None:
    """Unreachable or 5xx: DiscoveryUnavailable (try later), still a DiscoveryError; a 4xx is
    a plain DiscoveryError (the BFF maps the first to 503, the second to invalid_issuer)."""
    down = f"http://127.0.0.1:{refused_port()}"
    with pytest.raises(DiscoveryUnavailable):
        discover(down)
    with pytest.raises(DiscoveryUnavailable):
        await discover_async(down)
    with StubServer() as stub:
        stub.routes["/.well-known/oauth-authorization-server"] = (503, {}, "down")
        with pytest.raises(DiscoveryUnavailable, match="503"):
            await discover_async(stub.base_url)
        stub.routes["/.well-known/oauth-authorization-server"] = (403, {}, {"error": "x"})
        with pytest.raises(DiscoveryError, match="403") as raised:
            discover(stub.base_url)
        assert not isinstance(raised.value, DiscoveryUnavailable)
