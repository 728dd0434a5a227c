"""From a checked configuration to the running gateway: the guard, the key, the proxy."""

from __future__ import annotations

from tokensmith.errors import ConfigError
from tokensmith.gateway.config import GatewayConfig
from tokensmith.gateway.proxy import Gateway
from tokensmith.gateway.tokens import MintedTxnTokens, TxnTokenSource, load_or_create_key
from tokensmith.gateway.txn_exchange import ExchangedTxnTokens
from tokensmith.guard.apikeys import RemoteApiKeyVerifier
from tokensmith.guard.dpop import DpopPolicy
from tokensmith.guard.dpop_nonces import DpopNonces
from tokensmith.guard.guard import Guard
from tokensmith.guard.introspection import Introspector
from tokensmith.guard.jwks import JwksCache
from tokensmith.guard.jwt import JwtValidator

__all__ = ["build_gateway", "build_guard", "build_txn_tokens"]


def build_guard(config: GatewayConfig) -> Guard:
    server = config.server
    base = server.issuer.rstrip("/")
    # The shared guard admits any audience some route accepts; the proxy then holds each
    # request to its own route's (SECURITY.md case 60).
    audiences = config.token_audiences
    introspector = Introspector(
        server.introspection_endpoint or base + "/introspect",
        client_id=server.client_id,
        client_secret=server.client_secret,
        issuer=server.issuer,
        audiences=audiences,
        cache_seconds=server.introspection_cache_seconds,
        timeout=server.timeout,
    )
    api_keys = RemoteApiKeyVerifier(
        server.api_key_endpoint or base + "/api-keys/verify",
        client_id=server.client_id,
        client_secret=server.client_secret,
        cache_seconds=server.api_key_cache_seconds,
        timeout=server.timeout,
    )
    jwks = jwt = None
    if server.jwt_audiences:
        jwks = JwksCache(server.jwks_uri or base + "/jwks")
        jwt = JwtValidator(
            jwks,
            issuer=server.issuer,
            audiences=audiences,
            decryption_keys=server.decryption_keys,
        )
    return Guard(
        jwt=jwt,
        jwks=jwks,
        introspector=introspector,
        api_keys=api_keys,
        audiences=audiences,
        realm="gateway",
        dpop=_dpop(config),
    )


def _dpop(config: GatewayConfig) -> DpopPolicy | None:
    """DPoP against the gateway's public URL; proofs are remembered per gateway process."""
    if config.public_url is None:
        return None
    nonces = DpopNonces() if config.dpop_nonces else None
    return DpopPolicy(public_url=config.public_url, nonces=nonces)


def build_txn_tokens(config: GatewayConfig) -> TxnTokenSource:
    """Mint mode signs with the gateway's key; exchange mode asks the server (no key needed)."""
    txn, server = config.txn_tokens, config.server
    if txn.mode == "exchange":
        return ExchangedTxnTokens(
            server.token_endpoint or server.issuer.rstrip("/") + "/token",
            client_id=server.client_id,
            client_secret=server.client_secret,
            workload=txn.workload,
            cache_seconds=txn.exchange_cache_seconds,
            timeout=server.timeout,
        )
    if config.signing_key_file is None:  # parse_config requires it in mint mode
        raise ConfigError("gateway.signing_key_file is required in mint mode")
    key = load_or_create_key(config.signing_key_file)
    return MintedTxnTokens(
        key, issuer=config.issuer, ttl=config.internal_token_ttl, workload=txn.workload
    )


def build_gateway(config: GatewayConfig) -> Gateway:
    return Gateway(config, build_guard(config), build_txn_tokens(config))
