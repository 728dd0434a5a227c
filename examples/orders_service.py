"""A small orders API that trusts only the transaction tokens of its trust domain behind the
gateway (examples/gateway.toml), or, behind the BFF (examples/bff.toml), Tokensmith's access
tokens.

It knows nothing of outside tokens or API keys: behind the gateway, the guard checks each
transaction token against the JWKS of its issuer (the gateway's in mint mode, Tokensmith's in
exchange mode), and each endpoint names the scope it needs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI

from tokensmith.guard import Guard, Principal
from tokensmith.guard.fastapi import install_guard, require_scopes

__all__ = ["create_app"]

Reader = Annotated[Principal, Depends(require_scopes("orders:read"))]
Writer = Annotated[Principal, Depends(require_scopes("orders:write"))]


def create_app(
    issuer: str, audience: str, jwks_uri: str | None = None, *, transaction_tokens: bool = False
) -> FastAPI:
    """``issuer``: whose tokens it accepts, at ``jwks_uri`` (default: the gateway's JWKS path).
    With ``transaction_tokens`` only Txn-Tokens whose ``aud`` is the trust domain ``audience``
    (behind the gateway); else Tokensmith's own access tokens for ``audience`` (behind the BFF)."""
    app = FastAPI(title="orders")
    keys = jwks_uri or issuer + "/.well-known/jwks.json"
    if transaction_tokens:
        guard = Guard.for_transaction_tokens(issuer, trust_domain=audience, jwks_uri=keys)
    else:
        guard = Guard.for_issuer(issuer, audience=audience, jwks_uri=keys)
    install_guard(app, guard)
    orders: list[dict[str, Any]] = []

    @app.get("/orders")
    async def list_orders(principal: Reader) -> dict[str, Any]:
        mine = [order for order in orders if order["owner"] == principal.subject]
        return {
            "caller": principal.subject,
            "scope": principal.scope,
            "orders": mine,
            "txn": principal.txn,  # the transaction id, for the log lines of one call chain
            "purp": principal.purp,
        }

    @app.post("/orders", status_code=201)
    async def add_order(principal: Writer) -> dict[str, Any]:
        order = {"id": len(orders) + 1, "owner": principal.subject}
        orders.append(order)
        return order

    return app
