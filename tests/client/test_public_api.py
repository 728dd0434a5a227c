"""The public API of tokensmith.client, pinned: a change to it is a decision, not an accident."""

from __future__ import annotations

import tokensmith.client


def test_the_public_api() -> None:
    assert sorted(tokensmith.client.__all__) == [
        "AccessToken", "BearerAuth", "ClientCredentialsAuth", "ClientError",
        "DeviceAuthorization", "DiscoveryError", "FileStore", "IdTokenError", "KeyringStore",
        "LoginError", "NotSignedIn", "ServerMetadata", "ServerRefused", "Session", "SessionAuth",
        "SessionExpired", "SessionStore", "StorageError", "StoredSession",
        "TokenEndpointUnavailable", "client_assertion", "client_home", "device_login",
        "discover", "discover_async", "login", "open_store", "system_browser",
    ]  # fmt: skip
    for name in tokensmith.client.__all__:
        assert getattr(tokensmith.client, name) is not None
