"""The protocol tests' running server, users and clients, for the interop tests too."""

from tests.oauth.conftest import (  # noqa: F401  (fixtures, found by name)
    alice,
    http,
    machine,
    port,
    register,
    server,
    settings,
    web_app,
)
