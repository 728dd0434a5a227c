"""Settings from ``TOKENSMITH_*`` environment variables or a ``.env`` file (pydantic-settings).

Every problem is reported as one ``ConfigError`` line that names the variable. Production mode adds
refusals for settings that are safe only on a developer's machine (see ``unsafe_for_production``).
A ``TOKENSMITH_*`` variable that names no setting is most likely a typo of one: development mode
logs a warning naming the nearest real setting, production mode refuses to start.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tokensmith.core.durations import parse_duration
from tokensmith.core.forwarded import Network, ProxyHeader, TrustedProxies, parse_networks
from tokensmith.errors import ConfigError
from tokensmith.jose.algorithms import DEFAULT_ALGORITHM, SigningAlgorithm
from tokensmith.jose.jwe import EncryptionKey
from tokensmith.jose.resource_keys import parse_resource_keys

__all__ = [
    "ENV_PREFIX",
    "RESERVED_PREFIXES",
    "Settings",
    "load_settings",
    "nearest_setting",
    "unknown_variables",
]

ENV_PREFIX = "TOKENSMITH_"
ENV_FILE = ".env"
# Read by the test suite, the bench and the client kit (TOKENSMITH_CLIENT_HOME), never by the
# server: such a variable is not a typo, even on a machine that also runs the server.
RESERVED_PREFIXES = (ENV_PREFIX + "TEST_", ENV_PREFIX + "BENCH_", ENV_PREFIX + "CLIENT_")
Duration = Annotated[int, BeforeValidator(parse_duration)]
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

log = logging.getLogger(__name__)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=ENV_FILE, extra="ignore", frozen=True
    )

    mode: Literal["development", "production"] = "development"
    issuer: str = "http://127.0.0.1:8000"
    var_dir: Path = Path("var")
    database_url: str = ""
    database_schema: str | None = None
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # PostgreSQL: the longest any one wait on the database may take (connecting, a statement,
    # BEGIN or COMMIT, a free pooled connection); past it the request gets 503.
    database_timeout: float = Field(default=5.0, ge=0.1, le=300)
    redis_url: str | None = None  # shares rate limits and lockouts between nodes
    redis_key_prefix: str = Field(default="tokensmith:", min_length=1, max_length=64)
    # A Redis call slower than this counts as an outage: the node goes on from its own tables.
    redis_timeout: float = Field(default=0.25, ge=0.01, le=10)
    master_key: SecretStr | None = None
    master_key_file: Path | None = None

    signing_alg: SigningAlgorithm = DEFAULT_ALGORITHM
    key_rotation_period: Duration | None = None
    keys_refresh_interval: Duration = Field(default=10, ge=1, le=3600)
    jwks_max_age: Duration = Field(default=300, ge=0, le=86400)
    access_token_ttl: Duration = Field(default=300, ge=1)
    token_max_lifetime: Duration = Field(default=3600, ge=1)
    refresh_token_ttl: Duration = Field(default=30 * 86400, ge=60)
    # A refresh family ends this long after the login that began it, however often it rotates,
    # and earlier if no refresh happens for REFRESH_IDLE_TIMEOUT (RFC 9700 §4.14.2).
    refresh_family_max_lifetime: Duration = Field(default=90 * 86400, ge=3600)
    refresh_idle_timeout: Duration = Field(default=30 * 86400, ge=60)
    # Concurrent refreshes are not theft: a duplicate presentation of a refresh token within
    # this long of its rotation, by the same client authenticated the same way, gets the same
    # successor (docs/oauth.md). Per client with --refresh-grace; 0 turns it off.
    refresh_grace: Duration = Field(default=5, ge=0, le=120)
    session_ttl: Duration = Field(default=8 * 3600, ge=60)
    # The device grant (RFC 8628): how long a device and user code live, and the polling
    # interval a device is told (each slow_down adds 5 s to it, for that device code).
    device_code_ttl: Duration = Field(default=600, ge=60, le=3600)
    device_poll_interval: Duration = Field(default=5, ge=1, le=60)
    # Pushed authorization requests (RFC 9126): how long a request_uri lives (at most 60 s,
    # as the issue's bound and §2.2's advice say), and whether /authorize takes only pushed ones.
    par_ttl: Duration = Field(default=60, ge=1, le=60)
    require_par: bool = False
    # The built-in public client of the `tokensmith` command (client_id tokensmith-cli),
    # created at start-up; off: not created, and removed (with its tokens) if it exists.
    cli_client: bool = True
    clock_leeway: Duration = Field(default=60, ge=0, le=600)
    default_audience: str | None = None  # the aud of tokens that name no resource; the issuer
    # JSON: resource -> its public JWK, or a JWK/JWKS file path. Access tokens for that resource
    # are signed, then encrypted to it (oauth/resource_encryption.py, docs/configuration.md).
    resource_encryption_keys: str = ""
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=10 * 1024 * 1024)
    # DPoP (RFC 9449): require server nonces in proofs, and how old a proof's iat may be.
    dpop_nonce: bool = False
    dpop_proof_max_age: Duration = Field(default=60, ge=5, le=600)

    # API keys: "live" or "test" in the key's prefix (default: live in production, test otherwise),
    # and how long a node may serve a key from its cache, which bounds how late a revocation made
    # on another node takes effect.
    api_key_env: Literal["live", "test"] | None = None
    api_key_max_staleness: float = Field(default=1.0, ge=0, le=60)
    # Token exchange (RFC 8693): how long the JWT an API key is exchanged for lives, and the
    # transaction tokens' trust domain (their aud; unset: none are issued) and lifetime.
    api_key_exchange_ttl: Duration = Field(default=300, ge=10, le=3600)
    txn_token_audience: str | None = None
    txn_token_ttl: Duration = Field(default=60, ge=5, le=600)
    # Webhooks get security notifications (a leaked key, say), signed with HMAC-SHA256.
    webhook_urls: str = ""  # space- or comma-separated
    webhook_secret: SecretStr | None = None

    # Brute-force protection: failures within 15 minutes before a name is locked; each later
    # failure doubles the lock, from LOCKOUT_FIRST up to LOCKOUT_LONGEST.
    lockout_account_failures: int = Field(default=5, ge=1, le=1000)
    lockout_client_failures: int = Field(default=10, ge=1, le=1000)
    lockout_address_failures: int = Field(default=30, ge=1, le=100_000)
    lockout_first: Duration = Field(default=30, ge=1, le=3600)
    lockout_longest: Duration = Field(default=900, ge=1, le=86400)
    # Wrong user codes typed at /device within 15 minutes before code entry is locked, for the
    # browser's session and for its address (the same doubling locks as above).
    lockout_user_code_failures: int = Field(default=5, ge=1, le=1000)
    lockout_user_code_address_failures: int = Field(default=20, ge=1, le=100_000)
    # Requests per minute from one address to an endpoint that checks a secret; 0: no limit.
    rate_limit_per_address: int = Field(default=0, ge=0, le=10_000_000)
    # Password hashes (Argon2id) running at once per process (0: one per CPU core), and how many
    # sign-ins may wait for one; any beyond get 503 with Retry-After instead of piling up.
    password_hash_concurrency: int = Field(default=0, ge=0, le=1024)
    password_hash_queue: int = Field(default=64, ge=0, le=100_000)

    # Anomaly rules (docs/operations.md): failures in a burst, uses before a new network is news,
    # and how far above its own average a client's or key's volume must go.
    anomaly_burst_failures: int = Field(default=20, ge=2, le=100_000)
    anomaly_burst_window: Duration = Field(default=60, ge=1, le=86400)
    anomaly_network_history: int = Field(default=3, ge=0, le=10_000)
    anomaly_spike_factor: float = Field(default=10.0, ge=1.5, le=1000)
    anomaly_spike_minimum: int = Field(default=600, ge=1)
    anomaly_spike_period: Duration = Field(default=60, ge=1, le=3600)
    anomaly_spike_history: int = Field(default=5, ge=1, le=60)  # periods in the baseline
    anomaly_cooldown: Duration = Field(default=300, ge=1, le=86400)
    # Automatic responses (audit/responses.py); alerts are raised either way. A spike can hold
    # the client or key (429) for ANOMALY_THROTTLE; a user on a new network can be signed out.
    anomaly_spike_action: Literal["alert", "throttle"] = "alert"
    anomaly_new_network_action: Literal["alert", "reauthenticate"] = "alert"
    anomaly_throttle: Duration = Field(default=300, ge=1, le=86400)

    # Request-path audit events (tokens issued, refusals, logins) and the anomaly rules that read
    # them. Off only to measure their cost; production mode refuses it.
    audit_request_events: bool = True
    audit_retention: Duration = Field(default=90 * 86400, ge=86400)  # older events are deleted

    # The transport (docs/operations.md). Forwarding headers are read only from these proxies'
    # addresses (IPs or CIDRs, space- or comma-separated), and only the one header they write.
    trusted_proxies: str = ""
    proxy_header: ProxyHeader = "x-forwarded-for"
    # The request line and headers together, counted as they arrive; more is refused with 431.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    header_timeout: float = Field(default=10.0, gt=0, le=300)  # from first byte to last header
    body_idle_timeout: float = Field(default=10.0, gt=0, le=300)  # the longest pause in a body
    body_timeout: float = Field(default=60.0, gt=0, le=3600)  # the whole body, start to end
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # /metrics answers only a bearer of this token (unset: /metrics is not served at all).
    metrics_token: SecretStr | None = None

    # The grants /token offers (space- or comma-separated; runtime/features.py knows each name,
    # and refuses to start on another). Discovery and client registration follow. A grant
    # switched off is refused as unsupported, even to clients registered for it.
    grant_types: str = (
        "authorization_code refresh_token client_credentials device_code token_exchange"
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    readiness_timeout: float = Field(default=2.0, gt=0, le=30)

    @field_validator("issuer")
    @classmethod
    def _issuer_is_a_plain_url(cls, value: str) -> str:
        # RFC 8414 §2: the issuer is a URL with no query and no fragment.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://auth.example.com")
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise ValueError("must have no query and no fragment")
        return value.rstrip("/")

    @field_validator("txn_token_audience")
    @classmethod
    def _trust_domain_is_a_uri(cls, value: str | None) -> str | None:
        # The aud of every transaction token: an absolute URI naming the trust domain.
        parts = urlsplit(value or "")
        if value is not None and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError("must be an absolute URI such as https://trust.example")
        if value is not None and ("#" in value or any(ord(c) <= 0x20 for c in value)):
            raise ValueError("must have no fragment, space or control character")
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _webhooks_are_urls(cls, value: str) -> str:
        for url in value.replace(",", " ").split():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s) URL")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: str) -> str:
        parse_networks(value.replace(",", " ").split())
        return value

    @field_validator("resource_encryption_keys")
    @classmethod
    def _resource_keys_are_usable(cls, value: str) -> str:
        parse_resource_keys(value)  # ValueError saying which resource and why
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("key_rotation_period")
    @classmethod
    def _rotation_period_is_sane(cls, value: int | None) -> int | None:
        if value is not None and value < 3600:
            raise ValueError("must be at least 1h")
        return value

    # -- derived -----------------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'tokensmith.db'}"

    @property
    def enabled_grant_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.grant_types.replace(",", " ").split()))

    @property
    def webhooks(self) -> tuple[str, ...]:
        return tuple(self.webhook_urls.replace(",", " ").split())

    @property
    def key_env(self) -> Literal["live", "test"]:
        return self.api_key_env or ("live" if self.mode == "production" else "test")

    @property
    def proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies.replace(",", " ").split())

    @property
    def proxies(self) -> TrustedProxies:
        return TrustedProxies(self.proxy_networks, self.proxy_header)

    @property
    def resource_encryption(self) -> dict[str, EncryptionKey]:
        return parse_resource_keys(self.resource_encryption_keys)

    @property
    def audience(self) -> str:
        return self.default_audience or self.issuer

    @property
    def issuer_is_local(self) -> bool:
        host = urlsplit(self.issuer).hostname or ""
        return host in _LOCAL_HOSTS or _is_loopback(host)

    def unsafe_for_production(self) -> list[str]:
        """Each setting that production mode refuses, as one line naming the variable."""
        problems: list[str] = []
        if self.master_key is None and self.master_key_file is None:
            problems.append(
                "TOKENSMITH_MASTER_KEY (or TOKENSMITH_MASTER_KEY_FILE) is required in production; "
                "generate one with `tokensmith master-key generate`"
            )
        if urlsplit(self.issuer).scheme != "https" and not self.issuer_is_local:
            problems.append(f"TOKENSMITH_ISSUER must be https in production (got {self.issuer})")
        for url in self.webhooks:
            if urlsplit(url).scheme != "https" and not _is_local_url(url):
                problems.append(f"TOKENSMITH_WEBHOOK_URLS must be https in production (got {url})")
        if not self.audit_request_events:
            problems.append("TOKENSMITH_AUDIT_REQUEST_EVENTS may not be off in production")
        if ":memory:" in self.effective_database_url:
            problems.append("TOKENSMITH_DATABASE_URL must not be an in-memory database")
        return problems

    def check_consistency(self) -> None:
        if self.webhooks and self.webhook_secret is None:
            raise ConfigError(
                "TOKENSMITH_WEBHOOK_SECRET is required with TOKENSMITH_WEBHOOK_URLS "
                "(receivers check the signature)"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("TOKENSMITH_TLS_CERT and TOKENSMITH_TLS_KEY go together: set both")
        if self.access_token_ttl > self.token_max_lifetime:
            raise ConfigError(
                "TOKENSMITH_ACCESS_TOKEN_TTL exceeds TOKENSMITH_TOKEN_MAX_LIFETIME "
                f"({self.access_token_ttl}s > {self.token_max_lifetime}s)"
            )


def _is_local_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in _LOCAL_HOSTS or _is_loopback(host)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_settings(*, warn_unknown: bool = True, **overrides: object) -> Settings:
    """Read settings; turn a validation failure into one line naming the variable.

    ``warn_unknown=False`` is for a server's worker processes: their parent has already warned
    about unknown variables (production refuses them whatever it says).
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ENV_PREFIX + "_".join(str(p) for p in error["loc"]).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{name}: {message}") from None
    # Before the other checks: a misspelt TOKENSMITH_MASTER_KEY is better reported as the typo
    # than as a missing master key.
    _check_unknown_variables(settings.mode, warn=warn_unknown)
    settings.check_consistency()
    if settings.mode == "production":
        problems = settings.unsafe_for_production()
        if problems:
            raise ConfigError(problems[0])
    return settings


def unknown_variables(names: Iterable[str]) -> list[str]:
    """The ``TOKENSMITH_*`` names among ``names`` that no setting reads, sorted."""
    known = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    # pydantic-settings matches names case-insensitively, so a lower-case name still counts.
    return sorted(
        name
        for name in set(names)
        if name.upper().startswith(ENV_PREFIX)
        and name.upper() not in known
        and not name.upper().startswith(RESERVED_PREFIXES)
    )


def nearest_setting(name: str) -> str | None:
    """The real setting ``name`` is most likely a typo of, if any is close enough."""
    # Compared without the prefix, which every name shares and which would make all look alike.
    fields = [field.upper() for field in Settings.model_fields]
    close = difflib.get_close_matches(name.upper().removeprefix(ENV_PREFIX), fields, n=1)
    return ENV_PREFIX + close[0] if close else None


def _describe_unknown(name: str) -> str:
    nearest = nearest_setting(name)
    hint = f"did you mean {nearest}?" if nearest else "see docs/configuration.md"
    return f"{name} is not a Tokensmith setting ({hint})"


_warned: set[str] = set()  # a process warns once per name, however often it reads settings


def _check_unknown_variables(mode: str, *, warn: bool) -> None:
    unknown = unknown_variables([*os.environ, *_dotenv_names()])
    if not unknown:
        return
    if mode == "production":
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ConfigError(_describe_unknown(unknown[0]) + more)
    if warn:
        for name in [n for n in unknown if n not in _warned]:
            _warned.add(name)
            log.warning(
                _describe_unknown(name) + " and is ignored",
                extra={"variable": name, "nearest_setting": nearest_setting(name)},
            )


def _dotenv_names() -> list[str]:
    path = Path(ENV_FILE)
    return list(dotenv_values(path)) if path.is_file() else []
