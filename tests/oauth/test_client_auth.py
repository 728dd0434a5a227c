"""Client authentication logic: parsing, and equal work for unknown and wrong."""

from __future__ import annotations

import base64

import pytest

from tests.support import OFFERED
from tokensmith.core.secrets import keyed_hash
from tokensmith.errors import InvalidClient, InvalidRequest
from tokensmith.oauth import client_auth
from tokensmith.oauth.client_auth import authenticate_client, read_credentials
from tokensmith.oauth.clients import Client, NewClient
from tokensmith.oauth.params import Params

pytestmark = pytest.mark.anyio
PEPPER = b"p" * 32


class Store:
    def __init__(self, *clients: Client) -> None:
        self.clients = {c.client_id: c for c in clients}

    async def get(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def test_basic_credentials_are_form_urlencoded() -> None:
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    creds = read_credentials(basic("my%20client", "a%3Ab+c"), Params())
    assert creds.client_id == "my client"
    assert creds.secret == "a:b c"
    assert creds.method == "client_secret_basic"
    assert "a:b c" not in repr(creds)


def test_post_and_none() -> None:
    assert (
        read_credentials(None, Params([("client_id", "c"), ("client_secret", "s")])).method
        == "client_secret_post"
    )
    assert read_credentials(None, Params([("client_id", "c")])).method == "none"
    with pytest.raises(InvalidClient):
        read_credentials(None, Params())


def test_both_methods_at_once() -> None:
    with pytest.raises(InvalidRequest):
        read_credentials(basic("c", "s"), Params([("client_secret", "s")]))
    with pytest.raises(InvalidRequest):
        read_credentials(basic("c", "s"), Params([("client_id", "other")]))


async def test_unknown_and_wrong_do_the_same_work(monkeypatch: pytest.MonkeyPatch) -> None:
    client = NewClient("c", grant_types=("client_credentials",)).validated(
        "c1", keyed_hash(PEPPER, "right"), 0, offered=OFFERED
    )
    calls: list[str] = []
    real = client_auth.secret_matches

    def counting(candidate: Client, pepper: bytes, secret: str, now: int) -> bool:
        calls.append(candidate.client_id)
        return real(candidate, pepper, secret, now)

    monkeypatch.setattr(client_auth, "secret_matches", counting)
    store = Store(client)
    for client_id, secret in (("c1", "wrong"), ("nobody", "wrong")):
        with pytest.raises(InvalidClient, match="client authentication failed"):
            await authenticate_client(
                read_credentials(basic(client_id, secret), Params()), store, PEPPER, 0
            )
    assert len(calls) == 2  # one keyed hash and comparison for each, found or not
    assert (
        await authenticate_client(
            read_credentials(basic("c1", "right"), Params()), store, PEPPER, 0
        )
        == client
    )


async def test_public_client_cannot_use_a_secret_and_confidential_needs_one() -> None:
    public = NewClient("p", is_public=True, redirect_uris=("https://a.example/cb",)).validated(
        "p1", None, 0, offered=OFFERED
    )
    confidential = NewClient("c", grant_types=("client_credentials",)).validated(
        "c1", keyed_hash(PEPPER, "s"), 0, offered=OFFERED
    )
    store = Store(public, confidential)
    assert (
        await authenticate_client(
            read_credentials(None, Params([("client_id", "p1")])), store, PEPPER, 0
        )
        == public
    )
    with pytest.raises(InvalidClient):
        await authenticate_client(read_credentials(basic("p1", ""), Params()), store, PEPPER, 0)
    with pytest.raises(InvalidClient):
        await authenticate_client(
            read_credentials(None, Params([("client_id", "c1")])), store, PEPPER, 0
        )


async def test_a_secret_with_a_bad_checksum_costs_no_lookup() -> None:
    from tokensmith.oauth.clients import generate_client_secret

    secret = generate_client_secret()
    client = NewClient("c", grant_types=("client_credentials",)).validated(
        "c1", keyed_hash(PEPPER, secret), 0, offered=OFFERED
    )
    lookups: list[str] = []

    class Counting(Store):
        async def get(self, client_id: str) -> Client | None:
            lookups.append(client_id)
            return await super().get(client_id)

    store = Counting(client)
    mistyped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for method in (basic("c1", mistyped), None):
        params = Params() if method else Params([("client_id", "c1"), ("client_secret", mistyped)])
        with pytest.raises(InvalidClient):
            await authenticate_client(read_credentials(method, params), store, PEPPER, 0)
    assert lookups == []
    good = await authenticate_client(
        read_credentials(basic("c1", secret), Params()), store, PEPPER, 0
    )
    assert good.client_id == "c1" and lookups == ["c1"]
