"""The gateway's one TOML file: where it listens, whom it trusts, routes, limits.

Read with the standard library's ``tomllib`` (``toml_config.py``). Every problem stops the
start with the file and the key's name (``ConfigError``); unknown keys are refused too, so a typo
never silently drops a limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tokensmith.core.forwarded import NO_PROXIES, TrustedProxies, parse_networks
from tokensmith.errors import ConfigError
from tokensmith.guard.decryption import load_decryption_keys
from tokensmith.jose.jwe import DecryptionKey
from tokensmith.toml_config import check_table, from_env, http_url, read_toml, required

__all__ = [
    "AuthorizationServer",
    "GatewayConfig",
    "Route",
    "TxnTokenSettings",
    "load_config",
    "parse_config",
]

_ENDPOINTS = ("jwks_uri", "introspection_endpoint", "api_key_endpoint", "token_endpoint")
TXN_MODES = ("mint", "exchange")
RESERVED_PATHS = ("/metrics", "/healthz", "/.well-known/jwks.json")


@dataclass(frozen=True, slots=True)
class Route:
    path: str  # a path prefix, matched on whole segments
    upstream: str
    # The aud of the transaction token this upstream verifies: its trust domain, by default
    # [transaction_tokens] trust_domain.
    audience: str
    scopes: frozenset[str] = frozenset()
    strip_path: bool = False
    # Whether a caller's Txn-Id header names the transaction (else each request gets a new id).
    trust_incoming_txn: bool = False
    # The aud an outside credential must name to use this route (RFC 8707 resource): the
    # route's token_audiences, else gateway.resource, else authorization_server.jwt_audiences.
    token_audiences: tuple[str, ...] = ()

    def matches(self, path: str) -> bool:
        return self.path == "/" or path == self.path or path.startswith(self.path + "/")


@dataclass(frozen=True, slots=True)
class AuthorizationServer:
    issuer: str
    client_id: str
    client_secret: str
    # JWTs for one of these audiences are validated here against the JWKS; without any, every
    # bearer token goes to introspection (which also sees revoked JWTs).
    jwt_audiences: tuple[str, ...] = ()
    jwks_uri: str | None = None
    introspection_endpoint: str | None = None
    api_key_endpoint: str | None = None
    token_endpoint: str | None = None  # where exchange mode asks for transaction tokens
    introspection_cache_seconds: float = 1.0
    api_key_cache_seconds: float = 1.0
    timeout: float = 3.0
    # The private keys of JWTs encrypted to the gateway's audiences (guard/decryption.py).
    decryption_keys: tuple[DecryptionKey, ...] = ()


@dataclass(frozen=True, slots=True)
class TxnTokenSettings:
    """[transaction_tokens]: how the gateway gets the token it hands upstreams."""

    trust_domain: str  # the aud of every transaction token; default: gateway.issuer
    mode: str = "mint"  # mint: signed by the gateway's key; exchange: issued by the server
    workload: str = "tokensmith-gateway"  # rctx.req_wl: who asked for the token
    exchange_cache_seconds: float = 10.0  # how long one exchanged token serves one credential


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    issuer: str  # iss of minted txn tokens; upstreams read /.well-known/jwks.json here
    server: AuthorizationServer
    routes: tuple[Route, ...]
    signing_key_file: Path | None  # mint mode's key; exchange mode needs none
    host: str = "127.0.0.1"
    port: int = 8080
    internal_token_ttl: int = 60
    max_body_bytes: int = 1024 * 1024
    upstream_timeout: float = 10.0
    client_timeout: float = 30.0  # the longest wait for the next piece of a request body
    # Read limits at the connection (cli/gateway.py hands them to web/connection.py).
    max_header_bytes: int = 16 * 1024
    header_timeout: float = 10.0  # from a request's first byte to its last header
    body_timeout: float = 300.0  # a whole request body, start to end
    metrics_token: str | None = None  # /metrics answers only its bearer; unset: not served
    client_rate_per_minute: int = 600
    key_rate_per_minute: int = 600
    rate_limit_buckets: int = 100_000
    resource: str | None = None  # the default audience outside credentials must name
    # Forwarding headers are read only from these proxies (none by default: the gateway is the
    # edge), and only the one header they write.
    trusted_proxies: TrustedProxies = NO_PROXIES
    txn: TxnTokenSettings | None = None  # None only before parse_config fills it in

    @property
    def txn_tokens(self) -> TxnTokenSettings:
        return self.txn or TxnTokenSettings(trust_domain=self.issuer)

    # The origin clients call the gateway at: DPoP proofs must name it (RFC 9449 §4.3 htu).
    # Unset: DPoP is not accepted, and DPoP-bound tokens are refused.
    public_url: str | None = None
    dpop_nonces: bool = False  # ask DPoP clients for a nonce of ours (RFC 9449 §9)

    @property
    def token_audiences(self) -> frozenset[str]:
        """Every audience some route accepts: what the shared guard lets through at all."""
        return frozenset(a for route in self.routes for a in route.token_audiences)

    def route_for(self, path: str) -> Route | None:
        return next((route for route in self.routes if route.matches(path)), None)


_GATEWAY_KEYS = {
    "issuer": str,
    "host": str,
    "port": int,
    "signing_key_file": str,
    "internal_token_ttl": int,
    "max_body_bytes": int,
    "upstream_timeout": float,
    "client_timeout": float,
    "max_header_bytes": int,
    "header_timeout": float,
    "body_timeout": float,
    "metrics_token": str,
    "metrics_token_env": str,
    "client_rate_per_minute": int,
    "key_rate_per_minute": int,
    "rate_limit_buckets": int,
    "resource": str,
    "trusted_proxies": list,
    "proxy_header": str,
    "public_url": str,
    "dpop_nonces": bool,
}
_SERVER_KEYS = {
    "issuer": str,
    "client_id": str,
    "client_id_env": str,
    "client_secret": str,
    "client_secret_env": str,
    "jwt_audiences": list,
    "jwks_uri": str,
    "introspection_endpoint": str,
    "api_key_endpoint": str,
    "introspection_cache_seconds": float,
    "api_key_cache_seconds": float,
    "timeout": float,
    "token_endpoint": str,
    "decryption_keys": list,
}
_TXN_KEYS = {
    "mode": str,
    "trust_domain": str,
    "workload": str,
    "exchange_cache_seconds": float,
}
_ROUTE_KEYS = {
    "path": str,
    "upstream": str,
    "audience": str,
    "token_audiences": list,
    "scopes": list,
    "strip_path": bool,
    "trust_incoming_txn": bool,
}


def load_config(path: Path) -> GatewayConfig:
    return parse_config(read_toml(path), path.parent, str(path))


def parse_config(
    document: dict[str, Any], base: Path, name: str = "gateway config"
) -> GatewayConfig:
    unknown = set(document) - {"gateway", "authorization_server", "routes", "transaction_tokens"}
    if unknown:
        raise ConfigError(f"{name}: unknown section {sorted(unknown)[0]!r}")
    gateway = check_table(document, "gateway", _GATEWAY_KEYS, name)
    server = check_table(document, "authorization_server", _SERVER_KEYS, name)
    routes = document.get("routes")
    if not isinstance(routes, list) or not routes:
        raise ConfigError(f"{name}: [[routes]] needs at least one route")
    trusted = _server(server, name)
    default = _default_audiences(gateway, trusted, name)
    issuer = http_url(gateway, "issuer", f"{name}: gateway.issuer")
    txn = _txn_settings(document, issuer, name)
    parsed = tuple(
        _route(route, i, name, default, txn.trust_domain) for i, route in enumerate(routes)
    )
    key_file = _key_file(gateway, txn, base, name)
    named = {"issuer", "signing_key_file", "trusted_proxies", "proxy_header"}
    named |= {"metrics_token", "metrics_token_env", "public_url"}
    config = GatewayConfig(
        issuer=issuer,
        server=trusted,
        # Longest prefix first, so /orders/admin wins over /orders.
        routes=tuple(sorted(parsed, key=lambda r: len(r.path), reverse=True)),
        signing_key_file=key_file,
        trusted_proxies=_proxies(gateway, name),
        metrics_token=_metrics_token(gateway, name),
        txn=txn,
        public_url=_public_url(gateway, name),
        **{k: v for k, v in gateway.items() if k not in named},
    )
    _check_limits(config, name)
    return config


def _key_file(gateway: dict[str, Any], txn: TxnTokenSettings, base: Path, name: str) -> Path | None:
    if txn.mode == "exchange" and "signing_key_file" not in gateway:
        return None  # Tokensmith signs: the gateway holds no key
    key_file = Path(required(gateway, "signing_key_file", f"{name}: gateway"))
    return key_file if key_file.is_absolute() else base / key_file


def _txn_settings(document: dict[str, Any], issuer: str, name: str) -> TxnTokenSettings:
    if "transaction_tokens" not in document:
        return TxnTokenSettings(trust_domain=issuer)
    table = check_table(document, "transaction_tokens", _TXN_KEYS, name)
    mode = table.get("mode", "mint")
    if mode not in TXN_MODES:
        raise ConfigError(f"{name}: transaction_tokens.mode must be 'mint' or 'exchange'")
    for key in ("trust_domain", "workload"):
        value = table.get(key)
        if value is not None and (not value or any(c.isspace() for c in value)):
            raise ConfigError(f"{name}: transaction_tokens.{key} must be a name without spaces")
    seconds = table.get("exchange_cache_seconds", 10.0)
    if not 0 <= seconds <= 60:
        raise ConfigError(f"{name}: transaction_tokens.exchange_cache_seconds must be 0 to 60")
    return TxnTokenSettings(
        trust_domain=table.get("trust_domain", issuer),
        mode=mode,
        workload=table.get("workload", "tokensmith-gateway"),
        exchange_cache_seconds=seconds,
    )


def _public_url(table: dict[str, Any], name: str) -> str | None:
    if "public_url" not in table:
        return None
    url = http_url(table, "public_url", f"{name}: gateway.public_url")
    if urlsplit(url).path not in ("", "/") or "?" in url or "#" in url:
        raise ConfigError(f"{name}: gateway.public_url is an origin only (no path or query)")
    return url.rstrip("/")


def _metrics_token(table: dict[str, Any], name: str) -> str | None:
    if "metrics_token" not in table and "metrics_token_env" not in table:
        return None
    token = from_env(table, "metrics_token", f"{name}: gateway")
    if len(token) < 16:
        raise ConfigError(f"{name}: gateway.metrics_token must be at least 16 characters")
    return token


def _proxies(table: dict[str, Any], name: str) -> TrustedProxies:
    entries = table.get("trusted_proxies", [])
    if not all(isinstance(entry, str) for entry in entries):
        raise ConfigError(f"{name}: gateway.trusted_proxies must be a list of IPs or CIDRs")
    try:
        networks = parse_networks(entries)
    except ValueError as exc:
        raise ConfigError(f"{name}: gateway.trusted_proxies: {exc}") from None
    header = table.get("proxy_header", "x-forwarded-for")
    if header not in ("x-forwarded-for", "forwarded"):
        raise ConfigError(f"{name}: gateway.proxy_header must be x-forwarded-for or forwarded")
    return TrustedProxies(networks, header)


def _server(table: dict[str, Any], name: str) -> AuthorizationServer:
    where = f"{name}: authorization_server"
    secret = from_env(table, "client_secret", where)
    client_id = from_env(table, "client_id", where)
    urls: dict[str, Any] = {k: http_url(table, k, f"{where}.{k}") for k in _ENDPOINTS if k in table}
    audiences = table.get("jwt_audiences", [])
    if not all(isinstance(a, str) and a for a in audiences):
        raise ConfigError(f"{where}.jwt_audiences must be a list of audience strings")
    named = {"issuer", "client_id", "client_id_env", "client_secret", "client_secret_env"}
    named |= {"jwt_audiences", "decryption_keys", *urls}
    return AuthorizationServer(
        issuer=http_url(table, "issuer", f"{where}.issuer"),
        client_id=client_id,
        client_secret=secret,
        jwt_audiences=tuple(audiences),
        decryption_keys=_decryption_keys(table.get("decryption_keys", []), where),
        **urls,
        **{k: v for k, v in table.items() if k not in named},
    )


def _decryption_keys(paths: list[Any], where: str) -> tuple[DecryptionKey, ...]:
    if not all(isinstance(p, str) and p for p in paths):
        raise ConfigError(f"{where}.decryption_keys must be a list of key file paths")
    try:
        return load_decryption_keys(paths)
    except ValueError as exc:
        raise ConfigError(f"{where}.decryption_keys: {exc}") from None


def _default_audiences(
    gateway: dict[str, Any], server: AuthorizationServer, name: str
) -> tuple[str, ...]:
    """What a route without token_audiences accepts; () means the route must name its own."""
    resource = gateway.get("resource")
    if resource is not None:
        return (http_url(gateway, "resource", f"{name}: gateway.resource"),)
    return server.jwt_audiences


def _route(
    table: object, index: int, name: str, default: tuple[str, ...], trust_domain: str
) -> Route:
    where = f"{name}: routes[{index}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    check_table({"route": table}, "route", _ROUTE_KEYS, where)
    path = required(table, "path", where)
    if (
        not path.startswith("/")
        or (path != "/" and path.endswith("/"))
        or any(path == reserved or path.startswith(reserved + "/") for reserved in RESERVED_PATHS)
    ):
        raise ConfigError(
            f"{where}.path must start with '/', not end with one, and not be reserved"
        )
    scopes = table.get("scopes", [])
    if not all(isinstance(s, str) and s and " " not in s for s in scopes):
        raise ConfigError(f"{where}.scopes must be a list of scope names")
    return Route(
        path=path,
        upstream=http_url(table, "upstream", f"{where}.upstream").rstrip("/"),
        audience=table.get("audience") or trust_domain,
        scopes=frozenset(scopes),
        strip_path=bool(table.get("strip_path", False)),
        trust_incoming_txn=bool(table.get("trust_incoming_txn", False)),
        token_audiences=_token_audiences(table, where, default),
    )


def _token_audiences(
    table: dict[str, Any], where: str, default: tuple[str, ...]
) -> tuple[str, ...]:
    audiences = table.get("token_audiences")
    if audiences is None:
        if not default:  # no audience at all would mean "any": refuse to start instead
            raise ConfigError(
                f"{where}.token_audiences is required when gateway.resource is not set: "
                "the audience outside tokens must name"
            )
        return default
    if not audiences or not all(isinstance(a, str) and a for a in audiences):
        raise ConfigError(f"{where}.token_audiences must be a non-empty list of audience strings")
    return tuple(audiences)


def _check_limits(config: GatewayConfig, name: str) -> None:
    bounds = {
        # A transaction token is short-lived; the guard refuses one above 300 s by default.
        "internal_token_ttl": (config.internal_token_ttl, 5, 300),
        "max_body_bytes": (config.max_body_bytes, 0, 1024**3),
        "upstream_timeout": (config.upstream_timeout, 0.1, 600),
        "client_timeout": (config.client_timeout, 0.1, 600),
        "max_header_bytes": (config.max_header_bytes, 1024, 1024 * 1024),
        "header_timeout": (config.header_timeout, 0.1, 300),
        "body_timeout": (config.body_timeout, 0.1, 3600),
        "client_rate_per_minute": (config.client_rate_per_minute, 1, 10**7),
        "key_rate_per_minute": (config.key_rate_per_minute, 1, 10**7),
        "rate_limit_buckets": (config.rate_limit_buckets, 1, 10**7),
        "port": (config.port, 0, 65535),
    }
    for key, (value, low, high) in bounds.items():
        if not low <= value <= high:
            raise ConfigError(f"{name}: gateway.{key} must be between {low} and {high}")
