"""The start-up check of the gateway's own client credentials, by one probe introspection.

A wrong ``client_id`` or ``client_secret`` would otherwise show only as a 503 on every opaque
token, long after the start. So before listening, the gateway introspects a made-up token with
its credentials (RFC 7662 §2.1): 200 means they work (the answer is ``{"active": false}``); 401 or
403 means the issuer refused them, and the start stops with a one-line error naming the setting.

An issuer that cannot be reached, or answers anything else, is only a warning: gateway and
issuer often start together, and until the issuer answers every introspected token is refused
with 503 anyway (fail closed), while JWTs, API keys and ``/healthz`` keep working. Stopping
here would turn a start-order race into a crash loop.
"""

from __future__ import annotations

import logging
import secrets

import httpx

from tokensmith.errors import ConfigError
from tokensmith.gateway.config import GatewayConfig

__all__ = ["introspection_endpoint", "probe_introspection"]

log = logging.getLogger("tokensmith.gateway")


def introspection_endpoint(config: GatewayConfig) -> str:
    server = config.server
    return server.introspection_endpoint or server.issuer.rstrip("/") + "/introspect"


def probe_introspection(config: GatewayConfig) -> bool:
    """True if the issuer accepted the credentials; False if it could not tell (warned);
    ConfigError if it refused them."""
    server, endpoint = config.server, introspection_endpoint(config)
    probe = "tsat_gateway-startup-probe-" + secrets.token_urlsafe(16)  # never a real token
    try:
        with httpx.Client(timeout=server.timeout, follow_redirects=False) as client:
            response = client.post(
                endpoint,
                data={"token": probe, "token_type_hint": "access_token"},
                auth=(server.client_id, server.client_secret),
                headers={"accept": "application/json"},
            )
    except httpx.HTTPError as exc:
        _warn(endpoint, f"unreachable ({type(exc).__name__})")
        return False
    if response.status_code in (401, 403):
        raise ConfigError(
            "authorization_server.client_id / client_secret: the issuer refused the gateway's "
            f"credentials at {endpoint} ({response.status_code}); check the client and its secret"
        )
    if response.status_code != 200:
        _warn(endpoint, f"answered {response.status_code}")
        return False
    return True


def _warn(endpoint: str, what: str) -> None:
    log.warning(
        "introspection probe failed; starting anyway, opaque tokens get 503 until it answers",
        extra={"endpoint": endpoint, "problem": what},
    )
