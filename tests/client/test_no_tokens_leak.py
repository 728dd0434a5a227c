"""No token or secret ever reaches a log line, a repr or an exception's text: every flow of the
kit runs with every logger (httpx and httpcore too) at DEBUG, and everything they said, every
repr of the kit's objects and every error's message is searched for every token value."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from tests.client.conftest import Browser, Registered, Registrar
from tests.support import ServerThread
from tokensmith.client import (
    ClientCredentialsAuth,
    ClientError,
    FileStore,
    ServerMetadata,
    Session,
    login,
)
from tokensmith.oauth.clients import NewClient


def test_no_token_in_logs_reprs_or_errors(
    server: ServerThread, metadata: ServerMetadata, cli_client: Registered, store: FileStore,
    home: Path, browser: Browser, register: Registrar, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "tokensmith", "tokensmith.client"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    secrets: list[str] = []
    texts: list[str] = []

    machine = register(NewClient("worker", grant_types=("client_credentials",), scope="api:read"))
    assert machine.secret is not None
    secrets.append(machine.secret)
    with ClientCredentialsAuth.for_issuer(
        server.base_url, machine.client_id, client_secret=machine.secret
    ) as auth:
        token = auth.tokens.get()
        secrets.append(token.value)
        texts += [repr(auth), repr(token), repr(auth.tokens)]
    with (
        ClientCredentialsAuth.for_issuer(
            server.base_url, machine.client_id, client_secret=machine.secret + "x"
        ) as wrong,
        pytest.raises(ClientError) as refused,
    ):
        wrong.access_token()
    texts.append(str(refused.value))

    def person(url: str) -> bool:
        # The person's browser is not the kit: what it logs (the redirect to the loopback
        # listener carries the code) is left out. The kit does nothing while it runs.
        logging.disable(logging.CRITICAL)
        try:
            return browser(url)
        finally:
            logging.disable(logging.NOTSET)

    session = login(metadata, cli_client.client_id, store, scope="openid api:read",
                    opener=person, home=home, timeout=10)  # fmt: skip
    assert browser.callback is not None
    code = httpx.URL(str(browser.callback.request.url)).params["code"]
    first_refresh = session.stored.refresh_token
    secrets += [code, first_refresh, session.access_token().value]
    texts += [repr(session), repr(session.stored), repr(session.auth()), repr(session.tokens)]
    with Session.load(metadata, cli_client.client_id, store, home=home) as later:
        secrets += [later.access_token().value, later.stored.refresh_token]
        texts += [repr(later), repr(later.stored)]
    session.tokens.forget()  # its refresh token is the old one: the store has the new one
    secrets.append(session.access_token().value)
    secrets.append(session.stored.refresh_token)
    assert session.logout()
    session.tokens.forget()
    with pytest.raises(ClientError) as signed_out:
        session.access_token()
    texts.append(str(signed_out.value))
    session.close()

    said = "\n".join([*(r.getMessage() for r in caplog.records), *texts, caplog.text])
    assert "POST" in said  # httpx did log, at DEBUG and INFO
    for value in secrets:
        assert value and value not in said
