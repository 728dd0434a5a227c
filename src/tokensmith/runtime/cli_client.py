"""The built-in public client of the ``tokensmith`` command line (``tokensmith login``).

Every server has it unless ``TOKENSMITH_CLI_CLIENT`` is off: ``open_services`` makes sure of it
at each start, idempotently (a second node starting at the same moment finds it made). It is a
public client (RFC 8252 native app: no secret, ``token_endpoint_auth_method`` none) for the code
flow with PKCE on a loopback redirect (any port: RFC 8252 §7.3), the device grant where no
browser can open, and refresh tokens, which rotate at every use. Switched off, it is deleted
with everything it was given (``oauth/client_removal.py``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tokensmith.oauth.client_removal import delete_client
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.device_authorization import DEVICE_CODE_GRANT

if TYPE_CHECKING:
    from tokensmith.runtime.services import Services

__all__ = ["CLI_CLIENT_ID", "CLI_REDIRECT_URI", "CLI_SCOPE", "ensure_cli_client"]

log = logging.getLogger(__name__)

CLI_CLIENT_ID = "tokensmith-cli"
CLI_REDIRECT_URI = "http://127.0.0.1/callback"
# A refresh token comes with the refresh_token grant here, not with an offline_access scope.
CLI_SCOPE = "openid profile email"
_GRANTS = ("authorization_code", "refresh_token", DEVICE_CODE_GRANT)


async def ensure_cli_client(services: Services) -> None:
    now = services.clock.now()
    existing = await services.clients.get(CLI_CLIENT_ID)
    if not services.settings.cli_client:
        if existing is not None:
            await delete_client(services, CLI_CLIENT_ID, now)
            log.info("built-in CLI client removed", extra={"client_id": CLI_CLIENT_ID})
        return
    offered = services.protocol.grants
    grants = tuple(g for g in _GRANTS if g in offered.grant_types)
    if existing is not None or "authorization_code" not in grants:
        return  # made before, or this server has no user sign-in for it
    client = NewClient(
        "Tokensmith CLI",
        is_public=True,
        grant_types=grants,
        redirect_uris=(CLI_REDIRECT_URI,),
        scope=CLI_SCOPE,
    ).validated(CLI_CLIENT_ID, None, now, offered=offered)
    try:
        await services.clients.add(client)
    except Exception:
        # Another node made it first; anything else is still an error.
        if await services.clients.get(CLI_CLIENT_ID) is None:
            raise
