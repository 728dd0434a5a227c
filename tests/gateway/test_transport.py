"""The gateway's edge over real sockets: header floods, dribblers, forwarding headers and who may
read /metrics (SECURITY.md cases 59, 61, 67)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import gateway_config, gateway_server
from tests.guard.conftest import Keys
from tests.guard.forge import claims, sign
from tests.guard.servers import StubServer
from tests.slow_clients import dribble, flood_headers
from tests.support import METRICS_AUTH, METRICS_TOKEN
from tokensmith.errors import ConfigError
from tokensmith.gateway import build_gateway
from tokensmith.gateway.config import parse_config

MEGABYTE = 1024 * 1024
QUICK = {"header_timeout": 1.0, "client_timeout": 1.0, "body_timeout": 2.5}


def start(stub: StubServer, upstream: str, tmp: Path, **gateway: Any) -> Any:
    document = gateway_config(stub, upstream, tmp, **{**QUICK, **gateway})
    return gateway_server(build_gateway(parse_config(document, tmp)))


@pytest.fixture(scope="module")
def edge(
    stub_issuer: StubServer, upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with start(stub_issuer, upstream, tmp_path_factory.mktemp("edge")) as base:
        yield base


def test_a_megabyte_header_block_is_refused_before_it_is_all_sent(edge: str) -> None:
    outcome = flood_headers(edge, MEGABYTE)
    assert outcome.sent < 256 * 1024, outcome.sent
    assert outcome.answer == b"" or outcome.answer.startswith(b"HTTP/1.1 431"), outcome.answer
    assert httpx.get(edge + "/healthz").status_code == 200


def test_dribbled_headers_are_cut_off(edge: str) -> None:
    outcome = dribble(edge, b"GET /orders HTTP/1.1\r\nHost: t\r\n", b"X-Slow: " + b"a" * 99, 0.1, 5)
    assert outcome.answer.startswith(b"HTTP/1.1 408"), outcome.answer
    assert 0.9 < outcome.seconds < 3, outcome.seconds


def test_dribbled_bodies_are_cut_off(edge: str, keys: Keys) -> None:
    token = sign(keys.es, claims(scope="orders:read")).encode()
    head = b"POST /orders HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n" % token
    head += b"Content-Length: 300\r\n\r\n"
    # One byte every 0.3 s never trips the 1 s idle timeout; the 2.5 s deadline cuts it.
    outcome = dribble(edge, head, b"a" * 300, 0.3, 6)
    assert outcome.answer.startswith(b"HTTP/1.1 408"), outcome.answer
    assert 2.3 < outcome.seconds < 4.5, outcome.seconds


def test_normal_requests_pass(edge: str, keys: Keys) -> None:
    token = sign(keys.es, claims(scope="orders:read"))
    with httpx.Client(base_url=edge, timeout=10) as http:
        headers = {"authorization": f"Bearer {token}", **{f"x-h{i}": "v" * 900 for i in range(10)}}
        response = http.post("/orders", content=b"x" * 500, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["body_bytes"] == 500


def test_a_forged_forwarded_for_is_not_the_client(edge: str, keys: Keys) -> None:
    token = sign(keys.es, claims(scope="orders:read"))
    headers = {"authorization": f"Bearer {token}", "x-forwarded-for": "203.0.113.9"}
    seen = dict(httpx.get(edge + "/orders", headers=headers).json()["headers"])
    assert seen["x-forwarded-for"] == "127.0.0.1"


def test_a_declared_proxy_names_the_client(
    stub_issuer: StubServer, upstream: str, tmp_path: Path, keys: Keys
) -> None:
    token = sign(keys.es, claims(scope="orders:read"))
    with start(stub_issuer, upstream, tmp_path, trusted_proxies=["127.0.0.1"]) as base:
        for forwarded, client in [
            ("203.0.113.9", "203.0.113.9"),
            ("1.1.1.1, 203.0.113.9", "203.0.113.9"),  # the left-most is the caller's own word
            ("garbage", "127.0.0.1"),
        ]:
            headers = {"authorization": f"Bearer {token}", "x-forwarded-for": forwarded}
            response = httpx.get(base + "/orders", headers=headers)
            assert response.status_code == 200, response.text
            assert dict(response.json()["headers"])["x-forwarded-for"] == client


def test_metrics_need_the_token(edge: str) -> None:
    # The module's gateway has no metrics token: /metrics is not served at all.
    assert httpx.get(edge + "/metrics", headers=METRICS_AUTH).status_code == 404


def test_metrics_with_a_token(stub_issuer: StubServer, upstream: str, tmp_path: Path) -> None:
    with start(stub_issuer, upstream, tmp_path, metrics_token=METRICS_TOKEN) as base:
        anonymous = httpx.get(base + "/metrics")
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_token"
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        wrong = httpx.get(base + "/metrics", headers={"authorization": "Bearer " + "x" * 29})
        assert wrong.status_code == 401
        assert (
            httpx.get(base + "/metrics", headers={"authorization": METRICS_TOKEN}).status_code
            == 401
        )
        allowed = httpx.get(base + "/metrics", headers=METRICS_AUTH)
        assert allowed.status_code == 200 and "tokensmith_gateway_requests_total" in allowed.text


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"trusted_proxies": ["10.0.0.0/33"]}, "gateway.trusted_proxies"),
        ({"trusted_proxies": "10.0.0.1"}, "gateway.trusted_proxies"),
        ({"proxy_header": "x-real-ip"}, "gateway.proxy_header"),
        ({"metrics_token": "short"}, "gateway.metrics_token"),
        ({"max_header_bytes": 10}, "gateway.max_header_bytes"),
        ({"header_timeout": 0}, "gateway.header_timeout"),
    ],
)
def test_bad_edge_settings_name_the_key(tmp_path: Path, change: dict[str, Any], named: str) -> None:
    stub = type("Unreached", (), {"base_url": "http://127.0.0.1:1"})()
    document = gateway_config(stub, "http://127.0.0.1:1", tmp_path, **change)
    with pytest.raises(ConfigError, match=named):
        parse_config(document, tmp_path)
