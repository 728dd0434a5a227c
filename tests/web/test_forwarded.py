"""Forwarding headers over real HTTP: a forged X-Forwarded-For passes no API-key range, escapes
no address lockout and lands in no audit record, unless a declared proxy sent it (case 59)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.oauth.conftest import Registered, Registrar, admin_token
from tests.support import ServerThread
from tokensmith.oauth.clients import NewClient
from tokensmith.settings import Settings

RANGE = "203.0.113.0/24"


@contextmanager
def serving(settings: Settings, **update: Any) -> Iterator[tuple[httpx.Client, Registrar]]:
    settings = settings.model_copy(update={"lockout_address_failures": 3, **update})
    with (
        ServerThread(settings) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        yield http, Registrar(settings)


def ranged_key(http: httpx.Client, token: str) -> str:
    response = http.post(
        "/admin/api-keys",
        json={"name": "n", "scope": "a", "allowed_cidrs": [RANGE]},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def verify(http: httpx.Client, key: str, forwarded: str) -> httpx.Response:
    return http.post("/api-keys/verify", headers={"x-api-key": key, "x-forwarded-for": forwarded})


def audit_addresses(http: httpx.Client, token: str, event: str) -> list[str | None]:
    response = http.get(
        "/admin/audit", params={"event": event}, headers={"authorization": f"Bearer {token}"}
    )
    return [e["source_ip"] for e in response.json()["events"]]


def bad_secret(http: httpx.Client, client: Registered, forwarded: str) -> int:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, "wrong"),
        headers={"x-forwarded-for": forwarded},
    )
    return response.status_code


def test_a_forged_header_from_an_undeclared_peer_changes_nothing(settings: Settings) -> None:
    with serving(settings) as (http, register):
        token = admin_token(http, register)
        key = ranged_key(http, token)
        assert verify(http, key, "203.0.113.9").json()["error"] == "forbidden_source"
        assert verify(http, key, "10.0.0.1, 203.0.113.9").status_code == 403
        forwarded = {"x-api-key": key, "forwarded": "for=203.0.113.9", "x-real-ip": "203.0.113.9"}
        assert http.post("/api-keys/verify", headers=forwarded).status_code == 403
        # Rotating the header does not escape the address lockout: 3 failures lock 127.0.0.1.
        victims = [
            register(NewClient(f"c{i}", grant_types=("client_credentials",))) for i in range(4)
        ]
        codes = [bad_secret(http, c, f"198.51.100.{i}") for i, c in enumerate(victims)]
        assert codes == [401, 401, 401, 429]
        assert set(audit_addresses(http, token, "token.refused")) == {"127.0.0.1"}


def test_a_declared_proxy_is_believed(settings: Settings) -> None:
    with serving(settings, trusted_proxies="127.0.0.1") as (http, register):
        token = admin_token(http, register)
        key = ranged_key(http, token)
        assert verify(http, key, "203.0.113.9").status_code == 200
        # The left-most entry is the caller's own word; the right-most untrusted hop counts.
        assert verify(http, key, "203.0.113.9, 198.51.100.7").status_code == 403
        assert verify(http, key, "198.51.100.7, 203.0.113.9").status_code == 200
        client = register(NewClient("c", grant_types=("client_credentials",)))
        assert bad_secret(http, client, "198.51.100.50") == 401
        assert "198.51.100.50" in audit_addresses(http, token, "token.refused")


MALFORMED = ["garbage", "", "unknown", "[::1", "1.2.3.4.5", "\u00ff\u00fe", ", ,", "a" * 5000]


def test_malformed_headers_are_ignored_never_a_500(settings: Settings) -> None:
    with serving(settings, trusted_proxies="127.0.0.0/8") as (http, register):
        key = ranged_key(http, admin_token(http, register))
        for value in MALFORMED:
            raw = value.encode("latin-1")
            headers = [(b"x-api-key", key.encode()), (b"x-forwarded-for", raw)]
            response = http.post("/api-keys/verify", headers=[*headers, (b"forwarded", raw)])
            # The peer (127.0.0.1) is the client: outside the key's range, and nothing crashed.
            assert response.status_code == 403, (value, response.text)


def test_padding_the_header_past_its_cap_does_not_make_the_caller_the_proxy(
    settings: Settings,
) -> None:
    """The caller pads X-Forwarded-For; the proxy appends the caller's real address. Were the
    oversized header ignored, the caller would be the proxy: inside a key's internal range, and
    counted against the address every genuine caller behind the proxy shares."""
    with serving(settings, trusted_proxies="127.0.0.1") as (http, register):
        token = admin_token(http, register)
        response = http.post(
            "/admin/api-keys",
            json={"name": "internal", "scope": "a", "allowed_cidrs": ["127.0.0.0/8"]},
            headers={"authorization": f"Bearer {token}"},
        )
        internal = str(response.json()["key"])
        padding = "127.0.0.1, " * 500  # over the 4096 bytes looked at
        assert verify(http, internal, padding + "198.51.100.7").status_code == 403
        assert verify(http, internal, "127.0.0.1").status_code == 200  # a caller on the host
        client = register(NewClient("c", grant_types=("client_credentials",)))
        assert bad_secret(http, client, padding + "198.51.100.50") == 401
        assert audit_addresses(http, token, "token.refused") == ["198.51.100.50"]


def test_rotating_through_one_ipv6_64_does_not_escape_the_address_lockout(
    settings: Settings,
) -> None:
    """One host is given a /64: counted address by address, it had 2^64 fresh lockout budgets."""
    with serving(settings, trusted_proxies="127.0.0.1") as (http, register):
        victims = [
            register(NewClient(f"c{i}", grant_types=("client_credentials",))) for i in range(5)
        ]
        rotated = [f"2001:db8:0:7::{i + 1:x}" for i in range(4)]
        codes = [bad_secret(http, c, a) for c, a in zip(victims, rotated, strict=False)]
        assert codes == [401, 401, 401, 429]
        assert bad_secret(http, victims[4], "2001:db8:0:8::1") == 401  # the next /64 is another
        assert bad_secret(http, victims[4], "198.51.100.1") == 401  # IPv4: each its own
