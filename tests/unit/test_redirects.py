"""Redirect URIs at registration (SECURITY.md case 16, registration half)."""

from __future__ import annotations

import pytest

from tokensmith.oauth.redirects import validate_redirect_uri


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com/cb?tenant=1",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:8080/callback",
        "http://[::1]:9000/cb",
        "http://localhost:3000/cb",
        "com.example.app:/oauth2redirect",
    ],
)
def test_acceptable_redirect_uris(uri: str) -> None:
    assert validate_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "https://app.example.com/cb#frag",
        "https://*.example.com/cb",
        "https://app.example.com/*",
        "http://app.example.com/cb",
        "http://127.0.0.1.evil.com/cb",
        "javascript:alert(1)",
        "data:text/html,hi",
        "https://user:pw@app.example.com/cb",
        "https://app.example.com@evil.com/cb",
        "https://app.example.com\\@evil.com/cb",
        "https://app.example.com/a/../b",
        "https://app.example.com/a/%2e%2e/b",
        "https://app.example.com/cb\r\nX: y",
        "https://app.example.com/c b",
        "/relative/path",
        "myapp:/cb",
        "https://" + "a" * 2000 + ".com/",
    ],
)
def test_refused_redirect_uris(uri: str) -> None:
    with pytest.raises(ValueError):
        validate_redirect_uri(uri)
