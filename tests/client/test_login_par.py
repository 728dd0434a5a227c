"""The browser sign-in where the issuer requires pushed authorization requests (RFC 9126 §5):
the kit pushes the request (a public client, with its client_id) and the browser carries only
client_id and the request_uri."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.client.conftest import Browser, Registered
from tokensmith.client import FileStore, ServerMetadata, login
from tokensmith.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"require_par": True})


def test_the_kit_pushes_when_the_issuer_requires_it(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path,
    browser: Browser,
) -> None:  # fmt: skip
    assert metadata.document["require_pushed_authorization_requests"] is True
    session = login(
        metadata, cli_client.client_id, store, scope="openid api:read", opener=browser,
        home=home, timeout=10,
    )  # fmt: skip
    sent = parse_qs(urlsplit(browser.opened[0]).query)
    assert set(sent) == {"client_id", "request_uri"}
    assert sent["request_uri"][0].startswith("urn:ietf:params:oauth:request_uri:")
    assert browser.callback is not None and browser.callback.status_code == 200
    assert session.access_token().value
    session.close()
