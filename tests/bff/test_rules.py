"""The BFF's rules on plain data: return_to, cookies, CSRF, sealing, the configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tokensmith.bff.config import parse_config
from tokensmith.bff.cookies import SESSION_COOKIE, clear_cookie, read_cookie, set_cookie
from tokensmith.bff.csrf import csrf_refusal
from tokensmith.bff.return_to import safe_return_to
from tokensmith.bff.sealing import Sealer, SealError, load_or_create_session_key
from tokensmith.core.sealing import MasterKey, generate_master_key
from tokensmith.errors import ConfigError

ORIGIN = "https://app.example"


@pytest.mark.parametrize(
    "value", ["/", "/orders", "/orders?x=1&y=2", "/a/b#frag", "/%7Euser", "/a//b"]
)
def test_same_origin_paths_are_accepted(value: str) -> None:
    assert safe_return_to(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/%2F/evil.example",
        "/%5cevil.example",
        "/\t/evil.example",
        "/\r\nSet-Cookie: x=1",
        "/a b",
        "/\x00",
        "/" + "a" * 3000,
        "/\u2215evil",  # a look-alike slash
    ],
)
def test_anything_else_is_refused(value: str | None) -> None:
    assert safe_return_to(value) is None


def test_cookie_reading_is_strict() -> None:
    value = "A" * 43
    assert read_cookie(f"{SESSION_COOKIE}={value}", SESSION_COOKIE) == value
    assert read_cookie(f"other=1; {SESSION_COOKIE}={value}; x=2", SESSION_COOKIE) == value
    assert read_cookie(f"{SESSION_COOKIE}={value}; {SESSION_COOKIE}=B", SESSION_COOKIE) is None
    assert read_cookie("tokensmith-session=x", SESSION_COOKIE) is None  # not the __Host- name
    assert read_cookie(None, SESSION_COOKIE) is None
    assert read_cookie("x" * 9000, SESSION_COOKIE) is None


def test_cookies_are_written_with_every_protection() -> None:
    line = set_cookie(SESSION_COOKIE, "v", 60)
    assert line.startswith("__Host-")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=60"):
        assert flag in line
    assert "Domain" not in line
    assert "Max-Age=0" in clear_cookie(SESSION_COOKIE)


@pytest.mark.parametrize(
    ("method", "headers", "refused"),
    [
        ("GET", {"x-tokensmith-csrf": "1"}, False),
        ("GET", {"x-tokensmith-csrf": "1", "sec-fetch-site": "same-origin"}, False),
        ("POST", {"x-tokensmith-csrf": "1", "origin": ORIGIN}, False),
        ("GET", {}, True),
        ("GET", {"x-tokensmith-csrf": "true"}, True),
        ("GET", {"x-tokensmith-csrf": "1", "sec-fetch-site": "cross-site"}, True),
        ("GET", {"x-tokensmith-csrf": "1", "sec-fetch-site": "same-site"}, True),
        ("GET", {"x-tokensmith-csrf": "1", "sec-fetch-site": "none"}, True),
        ("POST", {"x-tokensmith-csrf": "1"}, True),
        ("POST", {"x-tokensmith-csrf": "1", "origin": ORIGIN + ".evil.example"}, True),
        ("PUT", {"x-tokensmith-csrf": "1", "origin": "null"}, True),
        ("DELETE", {"x-tokensmith-csrf": "1", "origin": "http://app.example"}, True),
        ("PATCH", {"origin": ORIGIN}, True),
    ],
)
def test_csrf_rules(method: str, headers: dict[str, str], refused: bool) -> None:
    assert (csrf_refusal(method, headers, ORIGIN) is not None) is refused


def test_records_are_named_by_a_keyed_hash_and_sealed_to_their_name() -> None:
    sealer = Sealer(MasterKey.from_text(generate_master_key()))
    key, other = sealer.record_key("session", "c1"), sealer.record_key("session", "c2")
    assert b"c1" not in key and key != other
    assert sealer.record_key("login", "c1") != key  # a login cookie names no session
    sealed = sealer.seal({"access_token": "secret-token"}, key)
    assert b"secret-token" not in sealed
    assert sealer.unseal(sealed, key) == {"access_token": "secret-token"}
    with pytest.raises(SealError):
        sealer.unseal(sealed, other)  # moved to another record
    with pytest.raises(SealError):
        sealer.unseal(sealed[:-1] + bytes([sealed[-1] ^ 1]), key)  # altered
    foreign = Sealer(MasterKey.from_text(generate_master_key()))
    assert foreign.record_key("session", "c1") != key
    with pytest.raises(SealError):
        foreign.unseal(sealed, key)  # another BFF's key
    assert "secret" not in repr(sealer)


def test_the_session_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "var" / "key"
    first = load_or_create_session_key(None, path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = load_or_create_session_key(None, path)
    sealed = first.seal(b"x", "ctx")
    assert again.unseal(sealed, "ctx") == b"x"
    path.write_text("short")
    with pytest.raises(ConfigError):
        load_or_create_session_key(None, path)


def _document(tmp: Path, **bff: Any) -> dict[str, Any]:
    (tmp / "secret").write_text("s3cret\n")
    return {
        "bff": {"origin": ORIGIN, "session_key_file": "key", **bff},
        "authorization_server": {
            "issuer": "https://id.example",
            "client_id": "spa",
            "client_secret_file": "secret",
        },
        "upstream": [{"prefix": "/bff/api/orders", "url": "http://127.0.0.1:9001/orders"}],
    }


def test_a_good_configuration(tmp_path: Path) -> None:
    config = parse_config(_document(tmp_path), tmp_path)
    assert config.client_secret == "s3cret"
    assert "s3cret" not in repr(config)
    assert config.redirect_uri == ORIGIN + "/bff/callback"
    assert config.store == f"sqlite:///{tmp_path / 'var/bff-sessions.db'}"
    assert config.session_key_file == tmp_path / "key"
    assert config.upstream_for("/bff/api/orders/1") is not None
    assert config.upstream_for("/bff/api/ordersx") is None


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"bff": {"origin": "http://app.example"}}, "bff.origin"),
        ({"bff": {"origin": "https://app.example/path"}}, "bff.origin"),
        ({"bff": {"origin": "https://user@app.example"}}, "bff.origin"),
        ({"bff": {"colour": "blue"}}, "bff.colour"),
        ({"bff": {"store": "mysql://x"}}, "bff.store"),
        ({"bff": {"session_idle_timeout": 5}}, "session_idle_timeout"),
        ({"bff": {"session_key_env": "X"}}, "exactly one of session_key_env"),
        ({"authorization_server": {"client_secret": "inline"}}, "client_secret"),
        ({"authorization_server": {"client_secret_env": "NOT_SET_ANYWHERE"}}, "client_secret"),
        ({"authorization_server": {"scopes": ["profile"]}}, "openid"),
        ({"authorization_server": {"issuer": "ftp://id.example"}}, "issuer"),
        ({"upstream": [{"prefix": "/orders", "url": "http://x"}]}, "prefix"),
        ({"upstream": [{"prefix": "/bff/api/../x", "url": "http://x"}]}, "prefix"),
        ({"upstream": [{"prefix": "/bff/api/o/", "url": "http://x"}]}, "prefix"),
        ({"upstream": [{"prefix": "/bff/api/o", "url": "javascript:x"}]}, "url"),
        ({"upstream": []}, "upstream"),
        ({"extra": {}}, "extra"),
    ],
)
def test_a_bad_configuration_names_its_key(
    tmp_path: Path, change: dict[str, Any], key: str
) -> None:
    document = _document(tmp_path)
    for section, value in change.items():
        if isinstance(value, dict) and isinstance(document.get(section), dict):
            document[section] = {**document[section], **value}
        else:
            document[section] = value
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config(document, tmp_path)
