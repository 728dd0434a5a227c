"""Signing keys at start-up, on both databases: the first start makes them, another master key
is refused. The life cycle itself runs on every backend: tests/persistence/test_signing_keys.py.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tokensmith.core.sealing import generate_master_key
from tokensmith.errors import StartupError
from tokensmith.runtime.services import Services, open_services
from tokensmith.settings import Settings

# About storage end to end: on both databases.
pytestmark = [pytest.mark.anyio, pytest.mark.backends("sqlite", "postgresql")]


async def test_first_start_creates_active_and_next(services: Services) -> None:
    states = sorted(r.state for r in services.keyring.published())
    assert states == ["active", "next"]
    jwks = services.keyring.jwks()
    assert len(jwks["keys"]) == 2
    assert jwks["keys"][0]["kid"] == services.keyring.active.kid  # active first
    for jwk in jwks["keys"]:
        assert "d" not in jwk
        assert jwk["alg"] == "ES256"


async def test_services_refuse_a_database_sealed_with_another_key(
    services: Services, settings: Settings
) -> None:
    other = settings.model_copy(update={"master_key": SecretStr(generate_master_key())})
    with pytest.raises(StartupError, match="not the one this database was sealed with"):
        await open_services(other)
