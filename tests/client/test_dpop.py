"""The client kit's DPoP (RFC 9449): proofs on token requests and on API calls, the session's
key kept in the store across restarts, and the nonce retry that happens exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.client.dpop_issuer import dpop_issuer, protected_api
from tokensmith.client import (
    ClientCredentialsAuth,
    FileStore,
    ServerRefused,
    Session,
    StoredSession,
    discover,
)
from tokensmith.client.dpop import DpopKey, choose_dpop, proof_url
from tokensmith.client.signin import finish_sign_in
from tokensmith.core.clock import SystemClock


def machine(issuer_url: str, **options: object) -> ClientCredentialsAuth:
    return ClientCredentialsAuth.for_issuer(
        issuer_url,
        "worker",
        client_secret="s3cret",
        **options,  # type: ignore[arg-type]
    )


def test_client_credentials_bind_their_tokens_and_call_a_guarded_api() -> None:
    with dpop_issuer() as issuer, protected_api(issuer) as api, machine(issuer.base_url) as auth:
        assert auth.dpop is not None  # on: the metadata lists DPoP algorithms
        response = httpx.get(api + "/orders?page=2", auth=auth)
        assert response.status_code == 200, response.text
        assert response.json()["jkt"] == auth.dpop.jkt == issuer.proofs[0]["jkt"]
        assert auth.tokens.current is not None
        assert auth.tokens.current.token_type == "DPoP"
        assert "DpopKey" in repr(auth.dpop) and '"d"' not in repr(auth.dpop)


def test_async_calls_carry_proofs_too() -> None:
    with dpop_issuer() as issuer, protected_api(issuer) as api, machine(issuer.base_url) as auth:

        async def call() -> httpx.Response:
            async with httpx.AsyncClient(auth=auth) as client:
                return await client.get(api + "/orders")

        assert asyncio.run(call()).status_code == 200


def test_dpop_can_be_turned_off() -> None:
    with dpop_issuer() as issuer, machine(issuer.base_url, dpop=False) as auth:
        assert auth.dpop is None
        assert auth.tokens.get().token_type == "Bearer"
        assert issuer.proofs == []


def test_token_endpoint_nonce_is_retried_once() -> None:
    with dpop_issuer(nonce="once") as issuer, machine(issuer.base_url) as auth:
        token = auth.tokens.get()
        assert token.token_type == "DPoP"
        assert [p["nonce"] is None for p in issuer.proofs] == [True, False]
        assert auth.dpop is not None
        assert auth.dpop.nonce_for(issuer.base_url + "/token") == issuer.current_nonce


def test_a_second_use_dpop_nonce_is_not_retried_forever() -> None:
    with dpop_issuer(nonce="always") as issuer, machine(issuer.base_url) as auth:
        with pytest.raises(ServerRefused) as refused:
            auth.tokens.get()
        assert refused.value.error == "use_dpop_nonce"
        assert len(issuer.proofs) == 2  # the first try and one retry


def test_resource_nonce_is_retried_once() -> None:
    with (
        dpop_issuer() as issuer,
        protected_api(issuer, nonces=True) as api,
        machine(issuer.base_url) as auth,
        httpx.Client(auth=auth) as client,
    ):
        sent: list[httpx.Request] = []
        client.event_hooks["request"] = [sent.append]
        first = client.get(api + "/orders")
        assert first.status_code == 200, first.text
        assert len(sent) == 2  # 401 use_dpop_nonce, then the retry with its nonce
        second = client.get(api + "/orders")
        assert second.status_code == 200 and len(sent) == 3  # the nonce was remembered


def test_a_resource_that_always_wants_a_new_nonce_gets_one_retry() -> None:
    calls: list[dict[str, str]] = []

    def nagging(request: httpx.Request) -> httpx.Response:
        calls.append(dict(request.headers))
        challenge = 'DPoP error="use_dpop_nonce", algs="ES256"'
        nonce = f"n{len(calls)}"
        headers = {"www-authenticate": challenge, "dpop-nonce": nonce}
        return httpx.Response(401, headers=headers)

    transport = httpx.MockTransport(nagging)
    with (
        dpop_issuer() as issuer,
        machine(issuer.base_url) as auth,
        httpx.Client(auth=auth, transport=transport) as client,
    ):
        assert client.get("https://api.example/orders").status_code == 401
    assert len(calls) == 2
    assert calls[0]["authorization"].startswith("DPoP ")
    assert calls[0]["dpop"] != calls[1]["dpop"]


def test_the_session_key_survives_a_restart(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "sessions")
    with dpop_issuer() as issuer, protected_api(issuer) as api:
        metadata = discover(issuer.base_url)
        key = choose_dpop(metadata, None)
        assert key is not None
        body = {"access_token": "x", "token_type": "DPoP", "refresh_token": "rt-0"}
        issuer.bind("rt-0", key.jkt)
        with httpx.Client() as http:
            session = finish_sign_in(
                metadata, "cli", body, scope="orders:read", nonce=None, store=store, http=http,
                clock=SystemClock(), home=tmp_path, dpop=key,
            )  # fmt: skip
            assert session.dpop is not None and session.dpop.jkt == key.jkt
        text = (tmp_path / "sessions").glob("*.json").__next__().read_text()
        assert '"dpop_key"' in text
        stored = store.load(issuer.base_url, "cli")
        assert stored is not None and stored.dpop_key is not None
        assert "dpop_key" not in repr(stored)
        assert stored.dpop_key["jwk"]["d"] not in repr(stored) + repr(session.dpop)
        # A new process: the session, its key and its bound refresh token come from the store.
        with Session.load(metadata, "cli", store, home=tmp_path) as restarted:
            assert restarted.dpop is not None and restarted.dpop.jkt == key.jkt
            response = httpx.get(api + "/orders", auth=restarted.auth())
            assert response.status_code == 200, response.text
            assert response.json()["jkt"] == key.jkt
        assert issuer.proofs[-1]["jkt"] == key.jkt  # the refresh was proved by the same key


def test_a_refresh_by_another_key_fails(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "sessions")
    with dpop_issuer() as issuer:
        metadata = discover(issuer.base_url)
        issuer.bind("rt-1", DpopKey.generate().jkt)
        other = DpopKey.generate().to_stored()
        store.save(StoredSession(issuer.base_url, "cli", "rt-1", dpop_key=other))
        with (
            Session.load(metadata, "cli", store, home=tmp_path) as session,
            pytest.raises(ServerRefused),
        ):
            session.access_token()


def test_an_unreadable_stored_key_is_a_clear_error(tmp_path: Path) -> None:
    from tokensmith.client import StorageError

    store = FileStore(tmp_path / "sessions")
    with dpop_issuer() as issuer:
        metadata = discover(issuer.base_url)
        store.save(StoredSession(issuer.base_url, "cli", "rt", dpop_key={"jwk": "nope"}))
        with pytest.raises(StorageError, match="DPoP key"):
            Session.load(metadata, "cli", store, home=tmp_path)


def test_a_dpop_token_without_a_proof_is_refused() -> None:
    from tokensmith.client import ClientError
    from tokensmith.client.tokens import token_from_response

    body = {"access_token": "t", "token_type": "DPoP"}
    with pytest.raises(ClientError):
        token_from_response(body, 0)  # no key was used: the token would be unusable
    assert token_from_response(body, 0, dpop=True).token_type == "DPoP"
    plain = token_from_response({**body, "token_type": "bearer"}, 0, dpop=True)
    assert plain.token_type == "Bearer"  # the server chose not to bind


def test_proof_urls_and_nonces() -> None:
    assert proof_url("https://API.example:443/a/b?x=1#f") == "https://API.example:443/a/b"
    assert proof_url("https://api.example") == "https://api.example/"
    key = DpopKey.generate()
    for bad in ("", "x" * 600, "a\nb"):
        response = httpx.Response(200, headers={"dpop-nonce": bad} if bad else {})
        assert not key.remember_nonce("https://api.example/x", response)
    response = httpx.Response(200, headers={"dpop-nonce": "abc"})
    assert key.remember_nonce("https://API.example/x", response)
    assert not key.remember_nonce("https://api.example/y", response)  # the same, per origin
    assert key.nonce_for("https://api.example/z") == "abc"
    assert key.nonce_for("https://other.example/") is None
