"""Pushed authorization requests (RFC 9126) through a real server: SECURITY.md cases 100-104.

The request is pushed to /par by an authenticated client, then /authorize reads only the pushed
parameters and the client_id, consumes the request_uri at first sight and carries the request
through the real login and consent pages.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa

from tests.oauth.browser import Browser
from tests.oauth.conftest import Registered, Registrar
from tests.support import ServerThread
from tokensmith.jose.dpop import generate_proof_key, jwk_thumbprint, make_proof
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.pkce import s256
from tokensmith.persistence.tables import pushed_requests
from tokensmith.runtime.services import open_engine
from tokensmith.settings import Settings

pytestmark = [pytest.mark.usefixtures("alice"), pytest.mark.backends("sqlite")]
CALLBACK = "https://app.example.com/callback"
PREFIX = "urn:ietf:params:oauth:request_uri:"


def pushed_form(**overrides: str | None) -> tuple[dict[str, str], str]:
    verifier = secrets.token_urlsafe(48)
    form: dict[str, str | None] = {
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "scope": "openid api:read",
        "state": "st-" + secrets.token_hex(4),
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}, verifier


def push(http: httpx.Client, client: Registered, **overrides: str | None) -> httpx.Response:
    form, _ = pushed_form(**overrides)
    return http.post("/par", data=form, auth=(client.client_id, client.secret or ""))


def request_uri(http: httpx.Client, client: Registered, **overrides: str | None) -> str:
    response = push(http, client, **overrides)
    assert response.status_code == 201, response.text
    return str(response.json()["request_uri"])


def authorize_url(server: ServerThread, client_id: str, uri: str, **extra: str) -> str:
    return f"{server.base_url}/authorize?" + urlencode(
        {"client_id": client_id, "request_uri": uri, **extra}
    )


def stored_rows(settings: Settings) -> list[dict[str, Any]]:
    async def rows() -> list[dict[str, Any]]:
        engine = await open_engine(settings)
        try:
            async with engine.connect() as conn:
                found = await conn.execute(sa.select(pushed_requests))
                return [dict(row._mapping) for row in found]
        finally:
            await engine.dispose()

    return asyncio.run(rows())


def age_every_request(settings: Settings) -> None:
    """As if the request's lifetime had passed (no sleeping through 60 s)."""

    async def age() -> None:
        engine = await open_engine(settings)
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.update(pushed_requests).values(expires_at=1))
        finally:
            await engine.dispose()

    asyncio.run(age())


def assert_invalid_request_uri(page: Any) -> None:
    assert page.status_code == 400
    assert "location" not in page.headers  # shown on our page, never redirected
    assert "invalid_request_uri" in page.text


# -- the flow ---------------------------------------------------------------------------------


@pytest.mark.backends("sqlite", "postgresql")
def test_a_pushed_request_signs_in_and_its_code_is_exchanged(
    server: ServerThread, http: httpx.Client, web_app: Registered, settings: Settings
) -> None:
    form, verifier = pushed_form()
    response = http.post("/par", data=form, auth=(web_app.client_id, web_app.secret or ""))
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["expires_in"] == 60
    assert body["request_uri"].startswith(PREFIX)
    assert len(body["request_uri"].removeprefix(PREFIX)) >= 43  # 256 bits, base64url
    # Only what belongs to the request is stored, under the URI's keyed hash: no secret.
    (row,) = stored_rows(settings)
    assert body["request_uri"].encode() not in bytes(row["request_hash"])
    assert set(row["params"]) == set(form)

    outcome = Browser(server.base_url).authorize(
        authorize_url(server, web_app.client_id, body["request_uri"])
    )
    assert outcome.location.startswith(CALLBACK + "?")
    assert outcome.query["state"] == form["state"]
    token = http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": outcome.query["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        auth=(web_app.client_id, web_app.secret or ""),
    )
    assert token.status_code == 200, token.text
    assert {"access_token", "id_token", "refresh_token"} <= set(token.json())


def test_authorize_reads_only_the_pushed_parameters(
    server: ServerThread, http: httpx.Client, web_app: Registered
) -> None:
    uri = request_uri(http, web_app, state="pushed-state", scope="openid")
    url = authorize_url(
        server,
        web_app.client_id,
        uri,
        state="forged",
        redirect_uri="https://evil.example/cb",
        scope="openid api:read email",
        prompt="none",
    )
    outcome = Browser(server.base_url).authorize(url)
    assert outcome.location.startswith(CALLBACK + "?")
    assert outcome.query["state"] == "pushed-state"
    assert "code" in outcome.query


def test_a_public_client_pushes_with_its_client_id_alone(
    server: ServerThread, http: httpx.Client, native_app: Registered
) -> None:
    form, _ = pushed_form(redirect_uri="http://127.0.0.1:50123/callback", scope="openid")
    response = http.post("/par", data={**form, "client_id": native_app.client_id})
    assert response.status_code == 201, response.text
    outcome = Browser(server.base_url).authorize(
        authorize_url(server, native_app.client_id, response.json()["request_uri"])
    )
    assert outcome.location.startswith("http://127.0.0.1:50123/callback?code=")


def test_a_browser_app_reads_its_push_from_its_registered_origin_only(
    http: httpx.Client, register: Registrar
) -> None:
    spa = register(
        NewClient(
            "SPA",
            is_public=True,
            redirect_uris=(CALLBACK,),
            scope="openid",
            cors_origins=("https://spa.example.com",),
        )
    )
    form, _ = pushed_form(scope="openid")
    for origin, allowed in (("https://spa.example.com", True), ("https://evil.example", False)):
        response = http.post(
            "/par", data={**form, "client_id": spa.client_id}, headers={"origin": origin}
        )
        assert response.status_code == 201
        assert (response.headers.get("access-control-allow-origin") == origin) is allowed


def test_a_pushed_prompt_none_is_answered_without_a_page(
    server: ServerThread, http: httpx.Client, web_app: Registered
) -> None:
    uri = request_uri(http, web_app, prompt="none", state="s1")
    page = Browser(server.base_url).open(authorize_url(server, web_app.client_id, uri))
    assert page.status_code == 303
    assert page.headers["location"].startswith(CALLBACK + "?error=login_required")


# -- 100: a request_uri is used once, by its own client, before it expires --------------------


def test_a_used_request_uri_is_refused(
    server: ServerThread, http: httpx.Client, web_app: Registered
) -> None:
    uri = request_uri(http, web_app)
    url = authorize_url(server, web_app.client_id, uri)
    Browser(server.base_url).authorize(url)
    assert_invalid_request_uri(Browser(server.base_url).open(url))


def test_a_request_uri_is_spent_at_first_sight_but_the_sign_in_goes_on(
    server: ServerThread, http: httpx.Client, web_app: Registered
) -> None:
    """Consumed when /authorize first reads it: the login page carries the request sealed, so
    a second browser (or a reload) cannot replay the URI while the first one signs in."""
    uri = request_uri(http, web_app)
    url = authorize_url(server, web_app.client_id, uri)
    person = Browser(server.base_url)
    login_page = person.open(url)
    assert login_page.status_code == 200 and 'action="/login"' in login_page.text
    assert_invalid_request_uri(Browser(server.base_url).open(url))
    assert_invalid_request_uri(person.open(url))
    page = person.submit(login_page, "/login", username="alice", password="correct horse battery")
    page = person.submit(page, "/consent", decision="allow")
    assert page.status_code == 303
    assert page.headers["location"].startswith(CALLBACK + "?code=")


def test_an_expired_request_uri_is_refused(
    server: ServerThread, http: httpx.Client, web_app: Registered, settings: Settings
) -> None:
    uri = request_uri(http, web_app)
    age_every_request(settings)
    assert_invalid_request_uri(
        Browser(server.base_url).open(authorize_url(server, web_app.client_id, uri))
    )


@pytest.mark.parametrize(
    "uri",
    [
        PREFIX + "x" * 43,  # well formed, never issued
        PREFIX,
        "https://app.example.com/request.jwt",  # a request object by reference: not here
        "urn:ietf:params:oauth:request_uri:" + "A" * 500,
        "urn:example:other:" + "A" * 43,
    ],
)
def test_an_unknown_or_malformed_request_uri_is_refused(
    server: ServerThread, web_app: Registered, uri: str
) -> None:
    assert_invalid_request_uri(
        Browser(server.base_url).open(authorize_url(server, web_app.client_id, uri))
    )


def test_another_clients_request_uri_is_refused_and_stays_usable_by_its_own(
    server: ServerThread, http: httpx.Client, web_app: Registered, register: Registrar
) -> None:
    other = register(
        NewClient(
            "Other App",
            grant_types=("authorization_code",),
            redirect_uris=(CALLBACK,),
            scope="openid api:read",
        )
    )
    uri = request_uri(http, web_app)
    assert_invalid_request_uri(
        Browser(server.base_url).open(authorize_url(server, other.client_id, uri))
    )
    outcome = Browser(server.base_url).authorize(authorize_url(server, web_app.client_id, uri))
    assert "code" in outcome.query  # the refused use changed nothing


def test_a_request_uri_without_a_client_id_is_refused_on_our_page(
    server: ServerThread, http: httpx.Client, web_app: Registered
) -> None:
    uri = request_uri(http, web_app)
    page = Browser(server.base_url).open(
        f"{server.base_url}/authorize?" + urlencode({"request_uri": uri})
    )
    assert page.status_code == 400 and "location" not in page.headers
    # Not consumed by the refusal: its own client still signs in with it.
    assert (
        "code"
        in Browser(server.base_url).authorize(authorize_url(server, web_app.client_id, uri)).query
    )


# -- 101: only an authenticated client pushes --------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "extra"),
    [
        (None, {}),  # no credentials at all
        (None, {"client_id": "__web__"}),  # a confidential client naming itself, no secret
        ("wrong", {}),
    ],
)
def test_a_confidential_client_must_authenticate_to_push(
    http: httpx.Client,
    web_app: Registered,
    settings: Settings,
    auth: str | None,
    extra: dict[str, str],
) -> None:
    form, _ = pushed_form()
    form.update({k: web_app.client_id if v == "__web__" else v for k, v in extra.items()})
    credentials = (web_app.client_id, auth) if auth is not None else None
    response = http.post("/par", data=form, auth=credentials)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert stored_rows(settings) == []


def test_a_client_id_other_than_the_authenticated_one_is_refused(
    http: httpx.Client, web_app: Registered, native_app: Registered, settings: Settings
) -> None:
    response = push(http, web_app, client_id=native_app.client_id)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert stored_rows(settings) == []


# -- 102: pushed parameters are validated as /authorize would, and refused in JSON -------------


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"redirect_uri": CALLBACK + "/"}, "invalid_request"),
        ({"redirect_uri": "https://evil.example/callback"}, "invalid_request"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "unsupported_response_type"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"scope": "openid tokensmith:admin"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "select_account"}, "invalid_request"),
        ({"max_age": "²"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"state": "a\r\nb"}, "invalid_request"),
    ],
)
def test_pushed_parameters_that_authorize_would_refuse_are_refused(
    http: httpx.Client,
    web_app: Registered,
    settings: Settings,
    overrides: dict[str, str | None],
    error: str,
) -> None:
    response = push(http, web_app, **overrides)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "location" not in response.headers
    assert response.json()["error"] == error
    assert stored_rows(settings) == []


def test_a_client_without_the_code_flow_cannot_push(
    http: httpx.Client, machine: Registered, settings: Settings
) -> None:
    response = push(http, machine)
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_request", "unauthorized_client")
    assert stored_rows(settings) == []


# -- 103: nothing but the request itself may be pushed -----------------------------------------


def test_a_request_uri_inside_a_push_is_refused(
    http: httpx.Client, web_app: Registered, settings: Settings
) -> None:
    response = push(http, web_app, request_uri=PREFIX + "x" * 43)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "request_uri" in response.json()["error_description"]
    assert stored_rows(settings) == []


def test_a_request_object_is_refused_clearly(
    http: httpx.Client, web_app: Registered, settings: Settings
) -> None:
    response = push(http, web_app, request="eyJhbGciOiJub25lIn0.e30.")
    assert response.status_code == 400
    assert response.json()["error"] == "request_not_supported"
    assert stored_rows(settings) == []


# -- 104: where PAR is required, a plain request is refused -------------------------------------


def test_a_client_that_requires_par_is_refused_a_plain_request(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    strict = register(
        NewClient(
            "Strict App",
            grant_types=("authorization_code",),
            redirect_uris=(CALLBACK,),
            scope="openid",
            require_pushed_authorization_requests=True,
        )
    )
    form, _ = pushed_form(scope="openid", state="plain")
    plain = Browser(server.base_url).open(
        f"{server.base_url}/authorize?" + urlencode({**form, "client_id": strict.client_id})
    )
    assert plain.status_code == 303
    location = plain.headers["location"]
    assert location.startswith(CALLBACK + "?error=invalid_request")
    assert "pushed+authorization+request+required" in location and "state=plain" in location
    outcome = Browser(server.base_url).authorize(
        authorize_url(server, strict.client_id, request_uri(http, strict, scope="openid"))
    )
    assert "code" in outcome.query


def test_the_server_wide_switch_requires_par_of_every_client(
    settings: Settings, web_app: Registered
) -> None:
    strict = settings.model_copy(update={"require_par": True})  # a second node, same database
    with ServerThread(strict) as running, httpx.Client(base_url=running.base_url) as http:
        metadata = http.get("/.well-known/openid-configuration").json()
        assert metadata["require_pushed_authorization_requests"] is True
        assert metadata["pushed_authorization_request_endpoint"] == settings.issuer + "/par"
        form, _ = pushed_form()
        plain = Browser(running.base_url).open(
            f"{running.base_url}/authorize?" + urlencode({**form, "client_id": web_app.client_id})
        )
        assert plain.status_code == 303
        assert plain.headers["location"].startswith(CALLBACK + "?error=invalid_request")
        uri = request_uri(http, web_app)
        outcome = Browser(running.base_url).authorize(
            authorize_url(running, web_app.client_id, uri)
        )
        assert "code" in outcome.query


def test_the_lifetime_is_the_setting(settings: Settings, web_app: Registered) -> None:
    """TOKENSMITH_PAR_TTL; over 60 it is refused at start (tests/test_settings.py)."""
    short = settings.model_copy(update={"par_ttl": 20})
    with ServerThread(short) as running, httpx.Client(base_url=running.base_url) as http:
        response = push(http, web_app)
        assert response.json()["expires_in"] == 20
        (row,) = stored_rows(settings)
        assert row["expires_at"] - row["created_at"] == 20


# -- DPoP at /par (RFC 9449 §10.1) -----------------------------------------------------------


def _dpop_push(
    server: ServerThread, http: httpx.Client, client: Registered, key: dict[str, Any], **extra: str
) -> tuple[httpx.Response, str]:
    form, verifier = pushed_form(**extra)
    proof = make_proof(key, method="POST", url=server.base_url + "/par", now=int(time.time()))
    response = http.post(
        "/par", data=form, auth=(client.client_id, client.secret or ""), headers={"DPoP": proof}
    )
    return response, verifier


def _redeem(
    server: ServerThread, http: httpx.Client, client: Registered, uri: str, verifier: str, key: Any
) -> httpx.Response:
    outcome = Browser(server.base_url).authorize(authorize_url(server, client.client_id, uri))
    headers = {}
    if key is not None:
        headers["DPoP"] = make_proof(
            key, method="POST", url=server.base_url + "/token", now=int(time.time())
        )
    return http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": outcome.query["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        auth=(client.client_id, client.secret or ""),
        headers=headers,
    )


def test_a_proof_at_par_binds_the_code_to_its_key(
    server: ServerThread, http: httpx.Client, web_app: Registered
) -> None:
    key, other = generate_proof_key(), generate_proof_key()
    response, verifier = _dpop_push(server, http, web_app, key)
    assert response.status_code == 201, response.text
    uri = response.json()["request_uri"]
    refused = _redeem(server, http, web_app, uri, verifier, other)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

    response, verifier = _dpop_push(server, http, web_app, key)
    token = _redeem(server, http, web_app, response.json()["request_uri"], verifier, key)
    assert token.status_code == 200, token.text
    assert token.json()["token_type"] == "DPoP"


def test_a_dpop_jkt_that_is_not_the_proofs_key_is_refused_at_par(
    server: ServerThread, http: httpx.Client, web_app: Registered, settings: Settings
) -> None:
    key, other = generate_proof_key(), generate_proof_key()
    response, _ = _dpop_push(server, http, web_app, key, dpop_jkt=jwk_thumbprint(other))
    assert response.status_code == 400 and response.json()["error"] == "invalid_dpop_proof"
    stale = make_proof(key, method="POST", url=server.base_url + "/par", now=1_000_000)
    form, _ = pushed_form()
    response = http.post(
        "/par", data=form, auth=(web_app.client_id, web_app.secret or ""), headers={"DPoP": stale}
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_dpop_proof"
    assert stored_rows(settings) == []  # refused pushes store nothing
