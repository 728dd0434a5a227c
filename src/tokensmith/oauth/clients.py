"""Clients (RFC 6749 §2): registration data, secrets, and the store they live in.

Client secrets are ``tscs_``, 43 base62 characters (256 bits) and a 6-character CRC32 checksum
(core/checksum.py, the shape of API keys), so secret scanners can find leaked ones and a mistyped
secret is refused before it is hashed; secrets issued before this shape (``tscs_`` and base64url)
keep working. They are 256-bit random values kept only as HMAC-SHA256 under the server pepper and
compared in constant time (RFC 9700 §2.5 recommends strong, high-entropy credentials; a keyed fast
hash is as safe as a password hash for them and a thousand times cheaper). A rotated secret keeps
working until its grace period ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from tokensmith.core.checksum import CHECKSUM_LENGTH, crc32_base62, random_base62
from tokensmith.core.redirect_uris import parse_redirect_uri
from tokensmith.core.scopes import format_scope, parse_scope
from tokensmith.core.secrets import constant_time_equals, keyed_hash
from tokensmith.oauth.client_assertion import is_encryption_jwk
from tokensmith.oauth.exchange_policy import TOKEN_EXCHANGE_GRANT, parse_policy
from tokensmith.oauth.redirects import validate_redirect_uri
from tokensmith.oidc.encryption import check_client_encryption

__all__ = [
    "CLIENT_SECRET_PATTERN",
    "Client",
    "ClientEncryption",
    "ClientStore",
    "GrantCatalogue",
    "NewClient",
    "generate_client_id",
    "generate_client_secret",
    "has_bad_checksum",
    "is_client_secret",
    "secret_matches",
    "validate_origin",
]

SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
MAX_REFRESH_GRACE = 120  # long enough to retry a lost response, too short to hide a theft
CLIENT_SECRET_PREFIX = "tscs_"  # a type prefix, so secret scanners can find leaked secrets
_SECRET_LENGTH = 43  # base62 characters: 43 * log2(62) = 256.03 bits
# What a scanner would register (the checksum is the last six characters).
CLIENT_SECRET_PATTERN = re.compile(rf"tscs_[0-9A-Za-z]{{{_SECRET_LENGTH + CHECKSUM_LENGTH}}}")
TokenFormat = Literal["jwt", "opaque"]


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    is_public: bool
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    scope: str
    auth_method: str
    access_token_format: TokenFormat = "jwt"
    access_token_ttl: int | None = None
    refresh_token_ttl: int | None = None
    cors_origins: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    allowed_resources: tuple[str, ...] = ()
    jwks: dict[str, Any] | None = None
    refresh_grace: int | None = None  # None: the server's REFRESH_GRACE; 0: off
    rate_limit: int | None = None  # requests per minute at /token, /introspect, /revoke
    # May name its own callers' addresses (client_ip) at /api-keys/verify: a gateway's right.
    may_vouch_client_ip: bool = False
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2: every token request needs a proof
    require_pushed_authorization_requests: bool = False  # RFC 9126 §6
    token_exchange: dict[str, Any] | None = None  # what its RFC 8693 exchanges may ask for
    id_token_encrypted_response_alg: str | None = None  # OIDC Registration §2
    id_token_encrypted_response_enc: str | None = None
    userinfo_encrypted_response_alg: str | None = None
    userinfo_encrypted_response_enc: str | None = None
    secret_hash: bytes | None = field(default=None, repr=False)
    previous_secret_hash: bytes | None = field(default=None, repr=False)
    previous_secret_expires_at: int | None = None
    created_at: int = 0
    updated_at: int = 0
    # Parsed once per client record, not once per request.
    scopes: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", frozenset(self.scope.split()))


@dataclass(frozen=True, slots=True)
class ClientEncryption:
    """A client's ID token and userinfo encryption (OIDC Registration §2), each (alg, enc) or
    (None, None) for none."""

    id_token: tuple[str | None, str | None] = (None, None)
    userinfo: tuple[str | None, str | None] = (None, None)

    @classmethod
    def of(cls, client: Client) -> ClientEncryption:
        return cls(
            (client.id_token_encrypted_response_alg, client.id_token_encrypted_response_enc),
            (client.userinfo_encrypted_response_alg, client.userinfo_encrypted_response_enc),
        )

    def for_client(self, jwks: dict[str, Any] | None) -> ClientEncryption:
        """Checked against the JWKS, enc defaulted; ValueError saying what is wrong."""
        return ClientEncryption(
            check_client_encryption(jwks, *self.id_token, "ID token"),
            check_client_encryption(jwks, *self.userinfo, "userinfo"),
        )

    def columns(self) -> dict[str, str | None]:
        return {
            "id_token_encrypted_response_alg": self.id_token[0],
            "id_token_encrypted_response_enc": self.id_token[1],
            "userinfo_encrypted_response_alg": self.userinfo[0],
            "userinfo_encrypted_response_enc": self.userinfo[1],
        }


class GrantCatalogue(Protocol):
    """The grant types a server offers (``oauth/grant_types.GrantRegistry`` is one)."""

    @property
    def grant_types(self) -> tuple[str, ...]: ...

    def confidential_only(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class NewClient:
    """What an operator asks for; ``validated`` turns it into a Client or says what is wrong."""

    name: str
    is_public: bool = False
    grant_types: tuple[str, ...] = ()
    redirect_uris: tuple[str, ...] = ()
    scope: str = ""
    auth_method: str | None = None
    access_token_format: TokenFormat = "jwt"
    access_token_ttl: int | None = None
    refresh_token_ttl: int | None = None
    allowed_resources: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    jwks: dict[str, Any] | None = None
    refresh_grace: int | None = None
    rate_limit: int | None = None
    may_vouch_client_ip: bool = False
    token_exchange: dict[str, Any] | None = None  # oauth/exchange_policy.py
    dpop_bound_access_tokens: bool = False
    require_pushed_authorization_requests: bool = False  # RFC 9126 §6
    # OIDC Registration §2: alg alone means enc A256GCM; the JWKS must hold a key for the alg.
    encryption: ClientEncryption = field(default_factory=lambda: ClientEncryption())

    def validated(
        self, client_id: str, secret_hash: bytes | None, now: int, *, offered: GrantCatalogue
    ) -> Client:
        """``offered``: what this server offers (the running grant registry), so a client is
        never registered for a grant /token would refuse."""
        name = self.name.strip()
        if not name or len(name) > 200 or any(ord(c) < 0x20 for c in name):
            raise ValueError("a client name is 1 to 200 printable characters")
        # The defaults, of what is on offer: a public client without the refresh grant on
        # offer gets the code flow alone. Without its first grant, a default is no default.
        defaults = (
            ("authorization_code", "refresh_token") if self.is_public else ("client_credentials",)
        )
        grants = self.grant_types
        if not grants:
            if defaults[0] not in offered.grant_types:
                raise ValueError(f"{defaults[0]} is not on offer here: name the --grant-type")
            grants = tuple(g for g in defaults if g in offered.grant_types)
        unknown = set(grants) - set(offered.grant_types)
        if unknown:
            raise ValueError(f"unsupported grant type {sorted(unknown)[0]!r}")
        confidential = sorted(set(grants) & offered.confidential_only())
        if self.is_public and confidential:
            raise ValueError(f"a public client cannot use {confidential[0]}")
        if "authorization_code" in grants and not self.redirect_uris:
            raise ValueError("authorization_code needs at least one --redirect-uri")
        uris = tuple(validate_redirect_uri(u) for u in self.redirect_uris)
        scope = format_scope(set(parse_scope(self.scope)))
        auth_method = self._auth_method()
        if self.access_token_format not in ("jwt", "opaque"):
            raise ValueError("the access token format is jwt or opaque")
        if self.access_token_ttl is not None and self.access_token_ttl < 1:
            raise ValueError("an access token lifetime is at least 1 second")
        if self.refresh_token_ttl is not None and self.refresh_token_ttl < 60:
            raise ValueError("a refresh token lifetime is at least 60 seconds")
        resources = tuple(_validate_resource(r) for r in self.allowed_resources)
        logout_uris = tuple(validate_redirect_uri(u) for u in self.post_logout_redirect_uris)
        origins = tuple(validate_origin(o) for o in self.cors_origins)
        if self.refresh_grace is not None and not 0 <= self.refresh_grace <= MAX_REFRESH_GRACE:
            raise ValueError(f"the refresh grace window is 0 to {MAX_REFRESH_GRACE} seconds")
        if self.rate_limit is not None and not 1 <= self.rate_limit <= 10_000_000:
            raise ValueError("a client rate limit is 1 to 10,000,000 requests per minute")
        if self.may_vouch_client_ip and self.is_public:
            raise ValueError("a public client cannot vouch for client_ip")
        exchange = self._exchange_policy(grants)
        encryption = self.encryption.for_client(self.jwks)
        return Client(
            client_id=client_id,
            name=name,
            is_public=self.is_public,
            grant_types=tuple(sorted(set(grants))),
            redirect_uris=uris,
            scope=scope,
            auth_method=auth_method,
            access_token_format=self.access_token_format,
            access_token_ttl=self.access_token_ttl,
            refresh_token_ttl=self.refresh_token_ttl,
            allowed_resources=resources,
            post_logout_redirect_uris=logout_uris,
            cors_origins=origins,
            jwks=self.jwks,
            refresh_grace=self.refresh_grace,
            rate_limit=self.rate_limit,
            may_vouch_client_ip=self.may_vouch_client_ip,
            token_exchange=exchange,
            dpop_bound_access_tokens=self.dpop_bound_access_tokens,
            require_pushed_authorization_requests=self.require_pushed_authorization_requests,
            id_token_encrypted_response_alg=encryption.id_token[0],
            id_token_encrypted_response_enc=encryption.id_token[1],
            userinfo_encrypted_response_alg=encryption.userinfo[0],
            userinfo_encrypted_response_enc=encryption.userinfo[1],
            secret_hash=secret_hash if auth_method != "private_key_jwt" else None,
            created_at=now,
            updated_at=now,
        )

    def _exchange_policy(self, grants: tuple[str, ...]) -> dict[str, Any] | None:
        if self.token_exchange is None:
            return None
        if TOKEN_EXCHANGE_GRANT not in grants:
            raise ValueError(f"a token exchange policy needs the {TOKEN_EXCHANGE_GRANT} grant")
        return parse_policy(self.token_exchange).to_json()

    def _auth_method(self) -> str:
        if self.is_public:
            if self.auth_method not in (None, "none"):
                raise ValueError("a public client authenticates with none")
            return "none"
        # A JWKS of encryption keys only (for encrypted ID tokens) is no means of authentication.
        signs = self.jwks is not None and any(
            not is_encryption_jwk(jwk) for jwk in self.jwks.get("keys", ())
        )
        method = self.auth_method or ("private_key_jwt" if signs else "client_secret_basic")
        if method not in (*SECRET_AUTH_METHODS, "private_key_jwt"):
            raise ValueError(f"unsupported auth method {method!r}")
        if (method == "private_key_jwt") != signs:
            raise ValueError("private_key_jwt and a JWKS of signing keys (--jwks-file) go together")
        return method


def _validate_resource(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.netloc or "#" in uri:
        raise ValueError(f"resource {uri!r} is not an absolute http(s) URI without a fragment")
    return uri


def validate_origin(origin: str) -> str:
    """A web origin (RFC 6454): scheme, host and optional port; https, or http on loopback."""
    example = f"{origin!r} is not an origin such as https://app.example.com"
    try:
        # The same parser and https-or-loopback rule as redirect URIs.
        parsed = parse_redirect_uri(origin + "/")
    except ValueError as error:
        raise ValueError(f"{example}: {error}") from None
    if parsed.host is None or parsed.rest != "/":
        raise ValueError(example)
    return origin


def generate_client_id() -> str:
    # Base62, 22 characters (131 bits): no "-" or "_", so an id never starts like a command-line
    # option and survives every copy-paste; ids issued before (base64url) keep working.
    return random_base62(22)


def generate_client_secret() -> str:
    body = CLIENT_SECRET_PREFIX + random_base62(_SECRET_LENGTH)
    return body + crc32_base62(body)


def is_client_secret(text: str) -> bool:
    """``text`` has the checksummed shape and its checksum matches (no I/O, no hashing)."""
    if CLIENT_SECRET_PATTERN.fullmatch(text) is None:
        return False
    return crc32_base62(text[:-CHECKSUM_LENGTH]) == text[-CHECKSUM_LENGTH:]


def has_bad_checksum(secret: str) -> bool:
    """A secret in our checksummed shape whose checksum fails: mistyped or invented."""
    # Only the checksummed shape can fail its checksum; older secrets have another length.
    if CLIENT_SECRET_PATTERN.fullmatch(secret) is None:
        return False
    return crc32_base62(secret[:-CHECKSUM_LENGTH]) != secret[-CHECKSUM_LENGTH:]


def secret_matches(client: Client, pepper: bytes, secret: str, now: int) -> bool:
    """Check a presented secret against the current one and, within its grace, the previous one."""
    if has_bad_checksum(secret):
        return False  # mistyped or invented: refused before any hashing
    presented = keyed_hash(pepper, secret)
    # Both comparisons always run, so timing does not tell which secret matched.
    current = constant_time_equals(presented, client.secret_hash or b"\0" * 32)
    previous_live = (
        client.previous_secret_hash is not None
        and client.previous_secret_expires_at is not None
        and client.previous_secret_expires_at > now
    )
    previous = constant_time_equals(presented, client.previous_secret_hash or b"\0" * 32)
    return (current and client.secret_hash is not None) or (previous and previous_live)


class ClientStore(Protocol):
    async def add(self, client: Client) -> None: ...

    async def get(self, client_id: str) -> Client | None: ...

    async def list(self) -> list[Client]: ...

    async def replace_secret(
        self, client_id: str, secret_hash: bytes, previous_expires_at: int | None, now: int
    ) -> bool: ...

    async def delete(self, client_id: str) -> bool: ...

    async def set_encryption(self, client_id: str, choices: ClientEncryption, now: int) -> bool:
        """Replace the ID token and userinfo encryption choices (checked by ``for_client``)."""
        ...

    async def set_may_vouch_client_ip(self, client_id: str, allowed: bool, now: int) -> bool: ...

    async def set_token_exchange(
        self, client_id: str, policy: dict[str, Any] | None, now: int
    ) -> bool:
        """Replace a confidential client's token exchange policy (None: the narrowest one)."""

    async def set_dpop_bound_access_tokens(self, client_id: str, required: bool, now: int) -> bool:
        """Require (or stop requiring) a DPoP proof on every token request (RFC 9449 §5.2)."""

    async def set_refresh_grace(self, client_id: str, seconds: int | None, now: int) -> bool:
        """The client's duplicate-refresh window (None: the server's; 0: off); False if there
        is no such client."""
        ...

    async def set_require_par(self, client_id: str, required: bool, now: int) -> bool:
        """Require pushed authorization requests of the client (RFC 9126 §6), or stop; False
        if there is no such client."""
        ...

    async def find_by_secret(self, secret_hash: bytes) -> Client | None:
        """The client whose current or previous secret has this keyed hash (a leak report)."""
        ...

    async def revoke_secret(self, client_id: str, secret_hash: bytes, now: int) -> bool: ...
