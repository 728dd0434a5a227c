"""``tokensmith bff``: a backend-for-frontend that keeps a browser app's tokens out of the browser.

docs/bff.md says what it does and why; ``build_bff`` turns a checked configuration into the app.
"""

from __future__ import annotations

import httpx

from tokensmith.bff.app import Bff
from tokensmith.bff.config import BffConfig, Upstream, load_config, parse_config
from tokensmith.bff.oauth import IssuerClient
from tokensmith.bff.sealing import Sealer, load_or_create_session_key
from tokensmith.bff.sessions import Sessions
from tokensmith.bff.stores import Store, open_store
from tokensmith.core.clock import Clock, SystemClock

__all__ = ["Bff", "BffConfig", "Upstream", "build_bff", "load_config", "parse_config"]


def build_bff(
    config: BffConfig,
    *,
    clock: Clock | None = None,
    store: Store | None = None,
    issuer_http: httpx.AsyncClient | None = None,
) -> Bff:
    """``issuer_http``: the HTTP client for calls to the issuer (tests count them)."""
    clock = clock or SystemClock()
    key = load_or_create_session_key(config.session_key, config.session_key_file)
    sessions = Sessions(
        store or open_store(config.store, config.redis_key_prefix),
        Sealer(key),
        clock,
        idle=config.session_idle_timeout,
        absolute=config.session_absolute_timeout,
        login_timeout=config.login_timeout,
    )
    issuer = IssuerClient(
        config.issuer,
        config.client_id,
        config.client_secret,
        clock,
        timeout=config.issuer_timeout,
        client=issuer_http,
        resources=config.resources,
    )
    return Bff(config, sessions, issuer, clock)
