"""Where a client starts: the issuer's metadata (RFC 8414 §3, OpenID Connect Discovery 1.0 §4).

The metadata is fetched from ``/.well-known/oauth-authorization-server`` (inserted before the
issuer's path, RFC 8414 §3.1), then ``/.well-known/openid-configuration`` (appended, OIDC
Discovery §4). RFC 8414 §3.3: the ``issuer`` it names MUST be identical to the URL asked, or the
document is refused (a mix-up attack would otherwise hand us another server's endpoints). Plain
http is refused unless the host is loopback (RFC 8252 §8.3 and the OAuth 2.1 rule for TLS),
for the issuer and every endpoint the document names.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from tokensmith.client.bounded import Answer, send_bounded, send_bounded_async
from tokensmith.client.errors import DiscoveryError, DiscoveryUnavailable

__all__ = [
    "ServerMetadata",
    "check_url",
    "discover",
    "discover_async",
    "is_loopback",
    "same_issuer",
]

_MAX_METADATA_BYTES = 256 * 1024
_ACCEPT = {"accept": "application/json"}
_WELL_KNOWN = ("oauth-authorization-server", "openid-configuration")
# Metadata members holding a URL that the client may call or send a person to.
_URL_MEMBERS = (
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "revocation_endpoint",
    "introspection_endpoint",
    "userinfo_endpoint",
    "device_authorization_endpoint",
    "pushed_authorization_request_endpoint",
    "end_session_endpoint",
    "registration_endpoint",
)


@dataclass(frozen=True)
class ServerMetadata:
    """What the client reads from the issuer's metadata; ``document`` is the whole of it."""

    issuer: str
    token_endpoint: str
    authorization_endpoint: str | None = None
    jwks_uri: str | None = None
    revocation_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    iss_parameter_supported: bool = False
    id_token_algs: tuple[str, ...] = ()
    dpop_algs: tuple[str, ...] = ()  # RFC 9449 §5.1: dpop_signing_alg_values_supported
    document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, asked: str, document: Mapping[str, Any]) -> ServerMetadata:
        issuer = document.get("issuer")
        if not isinstance(issuer, str) or not same_issuer(issuer, asked):
            raise DiscoveryError(
                f"the metadata of {asked} names another issuer; refused (RFC 8414 §3.3)"
            )
        for name in _URL_MEMBERS:
            value = document.get(name)
            if value is not None:
                if not isinstance(value, str):
                    raise DiscoveryError(f"the metadata's {name} is not a URL")
                check_url(value, name)
        token_endpoint = document.get("token_endpoint")
        if not isinstance(token_endpoint, str):
            raise DiscoveryError(f"the metadata of {asked} names no token_endpoint")
        algs = document.get("id_token_signing_alg_values_supported") or []
        dpop_algs = document.get("dpop_signing_alg_values_supported") or []
        if not isinstance(dpop_algs, list):
            raise DiscoveryError("the metadata's dpop_signing_alg_values_supported is not a list")
        return cls(
            issuer=issuer,
            token_endpoint=token_endpoint,
            authorization_endpoint=document.get("authorization_endpoint"),
            jwks_uri=document.get("jwks_uri"),
            revocation_endpoint=document.get("revocation_endpoint"),
            userinfo_endpoint=document.get("userinfo_endpoint"),
            device_authorization_endpoint=document.get("device_authorization_endpoint"),
            iss_parameter_supported=(
                document.get("authorization_response_iss_parameter_supported") is True
            ),
            id_token_algs=tuple(a for a in algs if isinstance(a, str) and a != "none"),
            dpop_algs=tuple(a for a in dpop_algs if isinstance(a, str)),
            document=dict(document),
        )

    def endpoint(self, name: str) -> str:
        """The URL of the endpoint ``name`` (``revocation_endpoint``, ...); an error if absent."""
        value = getattr(self, name, None) or self.document.get(name)
        if not isinstance(value, str):
            raise DiscoveryError(f"the issuer {self.issuer} has no {name}")
        return value


def same_issuer(named: str, asked: str) -> bool:
    """Exact string equality, after removing one trailing slash from both (the only leniency)."""
    return named.removesuffix("/") == asked.removesuffix("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> str:
    """``url`` if it is https, or http on a loopback host; DiscoveryError otherwise."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise DiscoveryError(f"{what} is not a valid URL") from None
    if not host or parts.scheme not in ("https", "http"):
        raise DiscoveryError(f"{what} must be an https URL")
    if parts.scheme == "http" and not is_loopback(host):
        raise DiscoveryError(f"{what} must use https (plain http only on loopback): {url}")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise DiscoveryError(f"{what} must not carry credentials or a fragment")
    return url


def metadata_urls(issuer: str) -> tuple[str, str]:
    """RFC 8414 §3.1 (well-known inserted before the path), OIDC Discovery §4 (appended)."""
    parts = urlsplit(issuer.removesuffix("/"))
    origin = f"{parts.scheme}://{parts.netloc}"
    return (
        f"{origin}/.well-known/{_WELL_KNOWN[0]}{parts.path}",
        f"{issuer.removesuffix('/')}/.well-known/{_WELL_KNOWN[1]}",
    )


def discover(
    issuer: str, *, http: httpx.Client | None = None, timeout: float = 10
) -> ServerMetadata:
    """The issuer's metadata, checked; ``http`` is the client to ask with (default: a new one)."""
    check_url(issuer, "the issuer")
    own = http is None
    client = http or httpx.Client(timeout=timeout)
    try:
        for url in metadata_urls(issuer):
            request = client.build_request("GET", url, headers=_ACCEPT)
            try:
                answer = send_bounded(client, request, _MAX_METADATA_BYTES)
            except httpx.HTTPError as exc:
                raise _unreachable(issuer, exc) from None
            if (metadata := _read(issuer, answer)) is not None:
                return metadata
    finally:
        if own:
            client.close()
    raise _unpublished(issuer)


async def discover_async(issuer: str, *, http: httpx.AsyncClient | None = None) -> ServerMetadata:
    """``discover`` for asyncio code."""
    check_url(issuer, "the issuer")
    own = http is None
    client = http or httpx.AsyncClient(timeout=10)
    try:
        for url in metadata_urls(issuer):
            request = client.build_request("GET", url, headers=_ACCEPT)
            try:
                answer = await send_bounded_async(client, request, _MAX_METADATA_BYTES)
            except httpx.HTTPError as exc:
                raise _unreachable(issuer, exc) from None
            if (metadata := _read(issuer, answer)) is not None:
                return metadata
    finally:
        if own:
            await client.aclose()
    raise _unpublished(issuer)


def _read(issuer: str, answer: Answer) -> ServerMetadata | None:
    """The checked metadata of one well-known URL's answer; None for a 404 (try the next)."""
    if answer[0].status_code == 404:
        return None
    return ServerMetadata.from_document(issuer, _document(issuer, answer))


def _document(issuer: str, answer: Answer) -> dict[str, Any]:
    response, content = answer
    if response.status_code >= 500:
        raise DiscoveryUnavailable(f"{issuer}'s metadata answered {response.status_code}")
    if response.status_code != 200:
        raise DiscoveryError(f"{issuer}'s metadata answered {response.status_code}")
    if content is None:
        raise DiscoveryError(f"{issuer}'s metadata is too large")
    try:
        document = json.loads(content)
    except ValueError:
        raise DiscoveryError(f"{issuer}'s metadata is not JSON") from None
    if not isinstance(document, dict):
        raise DiscoveryError(f"{issuer}'s metadata is not a JSON object")
    return document


def _unreachable(issuer: str, exc: httpx.HTTPError) -> DiscoveryUnavailable:
    return DiscoveryUnavailable(f"{issuer} is unreachable ({type(exc).__name__})")


def _unpublished(issuer: str) -> DiscoveryError:
    return DiscoveryError(f"{issuer} publishes no authorization server metadata")
