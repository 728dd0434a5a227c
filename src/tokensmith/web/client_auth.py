"""The one way an endpoint authenticates an OAuth client (RFC 6749 §2.3), behind its lockouts.

Every endpoint that checks a client's credentials goes through ``authenticate_client``: /token,
/introspect, /revoke and /api-keys/verify. The steps, in order:

1. the address's request rate, if one is set;
2. authenticate (``oauth/client_auth.py``);
3. judge, in one atomic step: 429 if the claimed client at this address, or the address, is
   locked, right secret or wrong; else a wrong one is counted against both (``throttle.judge``);
4. admission: an automatic response's hold on the client, and its own request rate.

Failures count against the claimed client *at the address they came from*: whoever names a
client cannot lock it out where its genuine owner calls from (SECURITY 58).
"""

from __future__ import annotations

import contextlib

from starlette.requests import Request

from tokensmith.errors import InvalidClient, OAuthError
from tokensmith.oauth.client_auth import read_credentials
from tokensmith.oauth.clients import Client
from tokensmith.oauth.params import Params
from tokensmith.web.state import protocol_of
from tokensmith.web.throttle import admit, client_name, judge, peer, within_address_rate

__all__ = ["authenticate_client", "claimed_client"]


async def authenticate_client(request: Request, params: Params) -> Client:
    """The calling client; InvalidClient, TooManyRequests or InvalidRequest if not."""
    address = peer(request)
    name = client_name(claimed_client(request, params), address)
    await within_address_rate(request, address)
    try:
        client = await protocol_of(request).authenticator.authenticate(
            request.headers.get("authorization"), params
        )
    except InvalidClient:
        await judge(request, failed=True, client=name, address=address)
        raise
    await judge(request, failed=False, client=name, address=address)
    await admit(request, client)
    return client


def claimed_client(request: Request, params: Params | None) -> str | None:
    """The client id a request claims, before anything proves it (the Basic user, the body's
    client_id or an assertion's sub, whichever is sent); capped for use as a name."""
    authorization = request.headers.get("authorization")
    claimed = None
    with contextlib.suppress(OAuthError):
        claimed = read_credentials(authorization, params or Params([])).client_id
    if claimed is None and params is not None:
        claimed = params.get("client_id")
    if claimed is None:  # malformed, or two methods at once: the header still names someone
        with contextlib.suppress(OAuthError):
            claimed = read_credentials(authorization, Params([])).client_id
    return claimed[:128] if claimed else None
