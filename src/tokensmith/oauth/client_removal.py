"""Deleting a client ends everything it was given (SECURITY.md case 62).

The client's row goes first, so no new authentication succeeds (in another process, once its
client cache of at most one second has expired: docs/performance.md); then its refresh families,
its stored access tokens (opaque ones, and JWTs tied to a code or a family), its codes and its
device authorizations. A JWT from the client_credentials grant is never stored, so it cannot be
revoked by record: for those, introspection and this server's own bearer checks refuse any token
whose client no longer exists (``TokenInspector``). A resource server that verifies JWTs on its
own accepts them until they expire, at most ``TOKENSMITH_TOKEN_MAX_LIFETIME``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tokensmith.oauth.clients import ClientStore
from tokensmith.oauth.device_grants import DeviceGrantStore
from tokensmith.oauth.grants import CodeStore
from tokensmith.oauth.tokens import RefreshStore, TokenStore

__all__ = ["ClientHoldings", "ClientRemoval", "delete_client"]


class ClientHoldings(Protocol):
    """The stores that hold what a client was given (the running services have them all)."""

    @property
    def clients(self) -> ClientStore: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def refresh(self) -> RefreshStore: ...

    @property
    def codes(self) -> CodeStore: ...

    @property
    def device_grants(self) -> DeviceGrantStore: ...


@dataclass(frozen=True, slots=True)
class ClientRemoval:
    deleted: bool
    families: int
    tokens: int
    codes: int  # authorization codes and device authorizations dropped

    def detail(self) -> dict[str, int]:
        return {"families_revoked": self.families, "tokens_revoked": self.tokens}


async def delete_client(stores: ClientHoldings, client_id: str, now: int) -> ClientRemoval:
    """Delete the client and revoke what it holds. The revocations run even when the row was
    already gone, so a deletion interrupted half way can be finished by running it again."""
    deleted = await stores.clients.delete(client_id)
    # Families before tokens: a refresh that stores its access token after our token sweep
    # re-checks its family afterwards and revokes that token itself.
    families = await stores.refresh.revoke_for_client(client_id, now, "client_deleted")
    revoked = await stores.tokens.revoke_for_client(client_id, now)
    dropped = await stores.codes.delete_for_client(client_id)
    dropped += await stores.device_grants.delete_for_client(client_id)
    return ClientRemoval(deleted, families, revoked, dropped)
