"""Tokensmith's client kit: acquire, store and use tokens safely from apps, scripts and CLIs.

Runs on the base install plus ``tokensmith[client]`` (keyring); none of the server. See
docs/client.md.
"""

from tokensmith.client.bearer import BearerAuth
from tokensmith.client.credentials import ClientCredentialsAuth, client_assertion
from tokensmith.client.device import DeviceAuthorization, device_login
from tokensmith.client.discovery import ServerMetadata, discover, discover_async
from tokensmith.client.errors import (
    ClientError,
    DiscoveryError,
    IdTokenError,
    LoginError,
    NotSignedIn,
    ServerRefused,
    SessionExpired,
    StorageError,
    TokenEndpointUnavailable,
)
from tokensmith.client.home import client_home
from tokensmith.client.login import login, system_browser
from tokensmith.client.session import Session, SessionAuth
from tokensmith.client.storage import (
    FileStore,
    KeyringStore,
    SessionStore,
    StoredSession,
    open_store,
)
from tokensmith.client.tokens import AccessToken

__all__ = [
    "AccessToken",
    "BearerAuth",
    "ClientCredentialsAuth",
    "ClientError",
    "DeviceAuthorization",
    "DiscoveryError",
    "FileStore",
    "IdTokenError",
    "KeyringStore",
    "LoginError",
    "NotSignedIn",
    "ServerMetadata",
    "ServerRefused",
    "Session",
    "SessionAuth",
    "SessionExpired",
    "SessionStore",
    "StorageError",
    "StoredSession",
    "TokenEndpointUnavailable",
    "client_assertion",
    "client_home",
    "device_login",
    "discover",
    "discover_async",
    "login",
    "open_store",
    "system_browser",
]
