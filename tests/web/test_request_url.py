"""The URL protocol code sees (web/endpoints.py) is Starlette's reading of the scope, without its
query, whether or not it came from the cache."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import URL

from tokensmith.web.endpoints import _request_url

SCOPES: list[dict[str, Any]] = [
    {"scheme": "http", "server": ("127.0.0.1", 8000), "path": "/token", "headers": []},
    {"scheme": "https", "server": ("auth.example", 443), "path": "/token", "headers": []},
    {"scheme": "http", "server": ["::1", 8000], "path": "/introspect", "headers": []},
    {"scheme": "http", "server": None, "path": "/token", "headers": []},
    {
        "scheme": "https",
        "server": ("10.0.0.1", 8443),
        "path": "/a?b#c\\d",
        "headers": [(b"host", b"auth.example.com"), (b"host", b"second.example")],
    },
    {"scheme": "http", "server": ("h", 80), "path": "/t", "headers": [(b"host", b"bad host:x")]},
    {"scheme": "http", "server": ("h", 80), "path": "/t", "headers": [(b"host", b"[::1]:9000")]},
]


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: f"{s['scheme']}-{s['path']}")
def test_the_url_is_starlettes_without_the_query(scope: dict[str, Any]) -> None:
    full = {**scope, "type": "http", "query_string": b"client_secret=x"}
    expected = str(URL(scope={**full, "query_string": b""}))
    assert _request_url(full) == expected
    assert _request_url(full) == expected  # and again, from the cache
    assert "client_secret" not in expected


def test_a_long_host_is_answered_but_not_kept() -> None:
    from tokensmith.web.endpoints import _url

    host = b"h" * 4000
    scope = {"type": "http", "scheme": "http", "server": ("h", 80), "path": "/t"}
    before = _url.cache_info().currsize
    assert _request_url({**scope, "headers": [(b"host", host)]}) == "http://" + "h" * 4000 + "/t"
    assert _url.cache_info().currsize == before
