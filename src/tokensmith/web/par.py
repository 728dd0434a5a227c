"""HTTP for the pushed authorization request endpoint (RFC 9126 §2): the client pipeline's
route, answered like /token (JSON, ``no-store``, CORS for the client's registered origins)."""

from __future__ import annotations

from tokensmith.web.endpoints import client_endpoint
from tokensmith.web.state import protocol_of

__all__ = ["pushed"]

pushed = client_endpoint(lambda request: protocol_of(request).par, cors=True)
