"""The guard's key verifier, when the server refuses the verifier's own client rather than the key.

A wrong client secret (401 invalid_client) or a client without the --may-vouch-client-ip
permission (403 unauthorized_client) is a configuration error: the guard fails closed as
unavailable (503) instead of telling the caller their key is bad or used from the wrong place.
"""

from __future__ import annotations

import pytest

from tests.guard.servers import StubServer
from tokensmith.apikeys.format import generate_api_key
from tokensmith.guard import Credential, Guard, RemoteApiKeyVerifier, ServiceUnavailable


@pytest.mark.parametrize(
    ("status", "error"), [(401, "invalid_client"), (403, "unauthorized_client")]
)
def test_a_refused_verifier_client_fails_closed(status: int, error: str) -> None:
    with StubServer() as stub:
        stub.routes["/api-keys/verify"] = (status, {}, {"error": error})
        verifier = RemoteApiKeyVerifier(
            stub.base_url + "/api-keys/verify", client_id="gw", client_secret="s"
        )
        guard = Guard(api_keys=verifier)
        key = Credential("api_key", generate_api_key("live").text)
        for _ in range(2):  # not remembered as a verdict on the key
            with pytest.raises(ServiceUnavailable):
                guard.authenticate_blocking(key, "10.0.0.7")
        assert verifier.calls == 2
