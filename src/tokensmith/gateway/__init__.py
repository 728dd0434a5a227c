"""The gateway: a reverse proxy that trades outside credentials for short-lived transaction
tokens (draft-ietf-oauth-transaction-tokens), minted here or obtained from the server.

See docs/gateway.md. ``build_gateway(load_config(path))`` is the ASGI app ``tokensmith gateway``
serves.
"""

from tokensmith.gateway.app import build_gateway
from tokensmith.gateway.config import GatewayConfig, Route, load_config
from tokensmith.gateway.proxy import Gateway

__all__ = ["Gateway", "GatewayConfig", "Route", "build_gateway", "load_config"]
