"""A small orders API that trusts only the gateway's internal JWTs (examples/gateway.toml), or,
behind the BFF (examples/bff.toml), Tokensmith's access tokens.

It knows nothing of outside tokens or API keys: the guard checks the gateway-signed JWT against
the gateway's JWKS, and each endpoint names the scope it needs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI

from tokensmith.guard import Guard, Principal
from tokensmith.guard.fastapi import install_guard, require_scopes

__all__ = ["create_app"]

Reader = Annotated[Principal, Depends(require_scopes("orders:read"))]
Writer = Annotated[Principal, Depends(require_scopes("orders:write"))]


def create_app(gateway_url: str, audience: str, jwks_uri: str | None = None) -> FastAPI:
    """``gateway_url``: the issuer of the tokens it accepts (the gateway's internal JWTs; or
    Tokensmith's own access tokens behind the BFF, with ``jwks_uri`` at Tokensmith's /jwks)."""
    app = FastAPI(title="orders")
    guard = Guard.for_issuer(
        gateway_url,
        audience=audience,
        jwks_uri=jwks_uri or gateway_url + "/.well-known/jwks.json",
    )
    install_guard(app, guard)
    orders: list[dict[str, Any]] = []

    @app.get("/orders")
    async def list_orders(principal: Reader) -> dict[str, Any]:
        mine = [order for order in orders if order["owner"] == principal.subject]
        return {"caller": principal.subject, "scope": principal.scope, "orders": mine}

    @app.post("/orders", status_code=201)
    async def add_order(principal: Writer) -> dict[str, Any]:
        order = {"id": len(orders) + 1, "owner": principal.subject}
        orders.append(order)
        return order

    return app
