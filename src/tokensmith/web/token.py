"""HTTP for the token, introspection (RFC 7662) and revocation (RFC 7009) endpoints.

Each is a pipeline endpoint (``oauth/pipeline.py``); this module only adapts HTTP to it.
"""

from __future__ import annotations

from tokensmith.web.endpoints import client_endpoint
from tokensmith.web.state import protocol_of

__all__ = ["introspect", "revoke", "token"]

token = client_endpoint(lambda request: protocol_of(request).token, cors=True)
revoke = client_endpoint(lambda request: protocol_of(request).revocation, cors=True)
introspect = client_endpoint(lambda request: protocol_of(request).introspection)
