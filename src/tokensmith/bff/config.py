"""The BFF's one TOML file: its public origin, the issuer and its client, sessions, upstreams.

Read like the gateway's (``toml_config.py``): unknown keys are refused, every problem
stops the start naming the file and the key. The client secret is never written in the file: it
comes from an environment variable or a file the config names. docs/bff.md lists every key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tokensmith.errors import ConfigError
from tokensmith.toml_config import check_table, from_env, http_url, read_toml, required

__all__ = ["API_PREFIX", "BffConfig", "Upstream", "load_config", "parse_config"]

API_PREFIX = "/bff/api/"
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_PREFIX = re.compile(r"^/bff/api(/[A-Za-z0-9._~-]+)+$")


@dataclass(frozen=True, slots=True)
class Upstream:
    prefix: str  # /bff/api/orders: this prefix of the browser's path is replaced by url
    url: str  # http://127.0.0.1:9001/orders
    resource: str | None = None  # RFC 8707: the audience this API's tokens must name

    def matches(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")


@dataclass(frozen=True, slots=True)
class BffConfig:
    origin: str  # https://app.example: where the SPA and the BFF are served, scheme://host[:port]
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    upstreams: tuple[Upstream, ...]
    store: str  # sqlite:///path or redis://...
    session_key: str | None = field(default=None, repr=False)  # base64url, 32 bytes
    session_key_file: Path | None = None  # created with mode 0600 on first start
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    host: str = "127.0.0.1"
    port: int = 8700
    static_dir: Path | None = None
    redis_key_prefix: str = "tokensmith:bff:"
    session_idle_timeout: int = 2 * 3600
    session_absolute_timeout: int = 12 * 3600
    login_timeout: int = 600  # how long a started login may take to come back
    refresh_before: int = 30  # refresh an access token this many seconds before it expires
    max_body_bytes: int = 1024 * 1024
    upstream_timeout: float = 10.0
    issuer_timeout: float = 5.0
    max_header_bytes: int = 16 * 1024
    header_timeout: float = 10.0
    client_timeout: float = 30.0
    body_timeout: float = 300.0

    @property
    def redirect_uri(self) -> str:
        return self.origin + "/bff/callback"

    @property
    def secure_transport(self) -> bool:
        return self.origin.startswith("https://")

    @property
    def resources(self) -> tuple[str, ...]:
        """What the BFF asks tokens for (RFC 8707): every upstream's resource, once each."""
        return tuple(dict.fromkeys(u.resource for u in self.upstreams if u.resource))

    def upstream_for(self, path: str) -> Upstream | None:
        return next((u for u in self.upstreams if u.matches(path)), None)


_BFF_KEYS = {
    "origin": str,
    "host": str,
    "port": int,
    "static_dir": str,
    "store": str,
    "redis_key_prefix": str,
    "session_key_env": str,
    "session_key_file": str,
    "session_idle_timeout": int,
    "session_absolute_timeout": int,
    "login_timeout": int,
    "refresh_before": int,
    "max_body_bytes": int,
    "upstream_timeout": float,
    "issuer_timeout": float,
    "max_header_bytes": int,
    "header_timeout": float,
    "client_timeout": float,
    "body_timeout": float,
}
_SERVER_KEYS = {
    "issuer": str,
    "client_id": str,
    "client_id_env": str,
    "client_secret_env": str,
    "client_secret_file": str,
    "scopes": list,
}
_UPSTREAM_KEYS = {"prefix": str, "url": str, "resource": str}


def load_config(path: Path) -> BffConfig:
    return parse_config(read_toml(path), path.parent, str(path))


def parse_config(document: dict[str, Any], base: Path, name: str = "bff config") -> BffConfig:
    unknown = set(document) - {"bff", "authorization_server", "upstream"}
    if unknown:
        raise ConfigError(f"{name}: unknown section {sorted(unknown)[0]!r}")
    bff = check_table(document, "bff", _BFF_KEYS, name)
    server = check_table(document, "authorization_server", _SERVER_KEYS, name)
    where = f"{name}: authorization_server"
    named = {"origin", "static_dir", "store", "session_key_env", "session_key_file"}
    config = BffConfig(
        origin=_origin(bff, name),
        issuer=http_url(server, "issuer", f"{where}.issuer").rstrip("/"),
        client_id=from_env(server, "client_id", where),
        client_secret=_client_secret(server, base, where),
        upstreams=_upstreams(document.get("upstream"), name),
        store=_store(bff, base, name),
        scopes=_scopes(server, where),
        static_dir=_path(bff.get("static_dir"), base),
        **_session_key(bff, base, name),
        **{k: v for k, v in bff.items() if k not in named},
    )
    _check_limits(config, name)
    return config


def _origin(table: dict[str, Any], name: str) -> str:
    origin = required(table, "origin", f"{name}: bff").rstrip("/")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
        raise ConfigError(f"{name}: bff.origin must be scheme://host[:port], with no path")
    if parts.query or parts.fragment or parts.username is not None:
        raise ConfigError(f"{name}: bff.origin must be scheme://host[:port], with no path")
    if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
        # Secure cookies need TLS; only a browser's localhost counts as secure without it.
        raise ConfigError(f"{name}: bff.origin must be https (plain http only for localhost)")
    return origin


def _client_secret(table: dict[str, Any], base: Path, where: str) -> str:
    env, file = table.get("client_secret_env"), table.get("client_secret_file")
    if (env is None) == (file is None):
        raise ConfigError(f"{where} needs exactly one of client_secret_env and client_secret_file")
    if env is not None:
        return from_env({"client_secret_env": env}, "client_secret", where)
    path = _path(file, base)
    assert path is not None
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{where}.client_secret_file: {path} ({exc.strerror})") from None
    if not secret:
        raise ConfigError(f"{where}.client_secret_file: {path} is empty")
    return secret


def _session_key(table: dict[str, Any], base: Path, name: str) -> dict[str, Any]:
    env, file = table.get("session_key_env"), table.get("session_key_file")
    if (env is None) == (file is None):
        raise ConfigError(f"{name}: bff needs exactly one of session_key_env and session_key_file")
    if env is not None:
        return {"session_key": from_env({"key_env": env}, "key", f"{name}: bff.session")}
    return {"session_key_file": _path(file, base)}


def _store(table: dict[str, Any], base: Path, name: str) -> str:
    store = table.get("store", "sqlite:///var/bff-sessions.db")
    scheme, sep, rest = store.partition("://")
    if sep and scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        path = Path(rest[1:])
        return "sqlite:///" + str(path if path.is_absolute() else base / path)
    if sep and scheme in ("redis", "rediss", "unix") and rest:
        return str(store)
    raise ConfigError(f"{name}: bff.store must be sqlite:///path or redis://host[:port]/db")


def _scopes(table: dict[str, Any], where: str) -> tuple[str, ...]:
    scopes = table.get("scopes", ["openid", "profile", "email"])
    if not all(isinstance(s, str) and s and " " not in s for s in scopes):
        raise ConfigError(f"{where}.scopes must be a list of scope names")
    if "openid" not in scopes:
        raise ConfigError(f"{where}.scopes must include openid (the BFF signs people in)")
    return tuple(scopes)


def _upstreams(tables: object, name: str) -> tuple[Upstream, ...]:
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{name}: [[upstream]] needs at least one upstream")
    parsed = []
    for index, table in enumerate(tables):
        where = f"{name}: upstream[{index}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        check_table({"upstream": table}, "upstream", _UPSTREAM_KEYS, where)
        prefix = required(table, "prefix", where)
        if not _PREFIX.match(prefix) or any(p in (".", "..") for p in prefix.split("/")):
            raise ConfigError(f"{where}.prefix must be /bff/api/<name>, with no trailing '/'")
        url = http_url(table, "url", f"{where}.url").rstrip("/")
        resource = _resource(table, where)
        parsed.append(Upstream(prefix, url, resource))
    # Longest prefix first, so /bff/api/orders/admin wins over /bff/api/orders.
    return tuple(sorted(parsed, key=lambda u: len(u.prefix), reverse=True))


def _resource(table: dict[str, Any], where: str) -> str | None:
    resource = table.get("resource")
    if resource is None:
        return None
    parts = urlsplit(resource)
    if not parts.scheme or not parts.netloc or parts.fragment or "#" in resource:
        raise ConfigError(f"{where}.resource must be an absolute URI without a fragment")
    return str(resource)


def _path(value: object, base: Path) -> Path | None:
    if value is None:
        return None
    path = Path(str(value))
    return path if path.is_absolute() else base / path


def _check_limits(config: BffConfig, name: str) -> None:
    bounds = {
        "session_idle_timeout": (config.session_idle_timeout, 60, 30 * 86400),
        "session_absolute_timeout": (config.session_absolute_timeout, 60, 90 * 86400),
        "login_timeout": (config.login_timeout, 10, 3600),
        "refresh_before": (config.refresh_before, 0, 600),
        "max_body_bytes": (config.max_body_bytes, 0, 1024**3),
        "upstream_timeout": (config.upstream_timeout, 0.1, 600),
        "issuer_timeout": (config.issuer_timeout, 0.1, 60),
        "max_header_bytes": (config.max_header_bytes, 1024, 1024 * 1024),
        "header_timeout": (config.header_timeout, 0.1, 300),
        "client_timeout": (config.client_timeout, 0.1, 600),
        "body_timeout": (config.body_timeout, 0.1, 3600),
        "port": (config.port, 0, 65535),
    }
    for key, (value, low, high) in bounds.items():
        if not low <= value <= high:
            raise ConfigError(f"{name}: bff.{key} must be between {low} and {high}")
    if config.session_idle_timeout > config.session_absolute_timeout:
        raise ConfigError(f"{name}: bff.session_idle_timeout exceeds session_absolute_timeout")
