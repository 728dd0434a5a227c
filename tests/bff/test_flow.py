"""The BFF end to end: a real Tokensmith, its real login pages, the BFF, a guarded API."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.bff.conftest import CSRF, SpaUser, Stack, cookie_value, set_cookies
from tokensmith.bff.cookies import LOGIN_COOKIE, SESSION_COOKIE

JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def test_sign_in_session_and_api_call(stack: Stack, user: SpaUser, alice: str) -> None:
    done = user.sign_in("/orders?view=all")
    assert done.headers["location"] == "/orders?view=all"
    line = set_cookies(done)[SESSION_COOKIE]
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in line
    assert "Domain" not in line
    assert len(cookie_value(line)) == 43  # 256 random bits
    assert set_cookies(done)[LOGIN_COOKIE].startswith(f"{LOGIN_COOKIE}=;")  # cleared

    session = user.get("/bff/session")
    assert session.status_code == 200
    body = session.json()
    assert body["authenticated"] is True and body["sub"] == alice
    assert body["email"] == "alice@example.com"
    assert set(body) == {"authenticated", "sub", "name", "email", "expires_at"}
    assert session.headers["cache-control"] == "no-store"

    called = user.api("GET", "/bff/api/orders/7", authorization="Bearer browser-token")
    assert called.status_code == 200, called.text
    assert called.json() == {"sub": alice, "path": "/orders/7"}
    assert "set-cookie" not in called.headers  # the upstream's cookie stays inside
    assert "x-powered-by" not in called.headers
    assert "frame-ancestors 'none'" in called.headers["content-security-policy"]
    assert called.headers["x-content-type-options"] == "nosniff"
    assert called.headers["cache-control"] == "no-store"
    assert not JWT.search(called.text + session.text)

    (request,) = stack.upstream_seen
    names = {name for name, _ in request["headers"]}
    assert "cookie" not in names and "x-tokensmith-csrf" not in names
    (authorization,) = [v for k, v in request["headers"] if k == "authorization"]
    record = stack.record(user.session or "")
    assert record is not None
    assert authorization == f"Bearer {record.access_token}"  # the browser's own was dropped


def test_signing_in_again_replaces_the_browsers_session(stack: Stack, user: SpaUser) -> None:
    user.sign_in()
    first = user.session or ""
    old = stack.record(first)
    assert old is not None and old.refresh_token is not None
    user.sign_in()  # the browser still sends its first session's cookie to the callback
    assert user.session != first
    assert stack.record(first) is None
    assert stack.introspect(old.refresh_token) == {"active": False}
    assert user.get("/bff/session").status_code == 200


def test_a_post_with_a_body_reaches_the_api(stack: Stack, user: SpaUser) -> None:
    user.sign_in()
    sent = user.api(
        "POST", "/bff/api/orders", b'{"item": 1}', **{"content-type": "application/json"}
    )
    assert sent.status_code == 200
    assert stack.upstream_seen[-1]["body"] == '{"item": 1}'
    assert stack.upstream_seen[-1]["method"] == "POST"


@pytest.mark.parametrize(
    "return_to",
    [
        "//evil.example/",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/%2fevil.example",
        "/%5Cevil.example",
        "evil",
        "/a b",
        "/\t/evil.example",
    ],
)
def test_login_refuses_return_to_elsewhere(stack: Stack, user: SpaUser, return_to: str) -> None:
    refused = user.http.get(stack.base + "/bff/login", params={"return_to": return_to})
    assert refused.status_code == 400
    assert "set-cookie" not in refused.headers
    assert "location" not in refused.headers


def test_login_pushes_the_request_and_sends_the_browser_by_reference(
    stack: Stack, user: SpaUser
) -> None:
    """The issuer offers /par, so the BFF (confidential) pushes code + PKCE, state and nonce
    (RFC 9126); the browser carries only client_id and the request_uri."""
    url, cookie = user.start_login(None)
    assert url.startswith(stack.server.base_url + "/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert set(query) == {"client_id", "request_uri"}
    assert query["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert len(cookie) == 43


@pytest.mark.parametrize(
    "cookie",
    ["tampered", "expired", "foreign", "garbage", "twice"],
)
def test_a_bad_session_cookie_is_401_and_reaches_no_upstream(
    stack: Stack, user: SpaUser, cookie: str
) -> None:
    user.sign_in()
    good = user.session or ""
    if cookie == "tampered":
        user.session = good[:-1] + ("A" if good[-1] != "A" else "B")
    elif cookie == "expired":
        stack.clock.advance(stack.bff.sessions.idle + 1)
    elif cookie == "foreign":
        user.session = good.swapcase()  # well-formed, never issued here
    elif cookie == "garbage":
        user.session = "x" * 300
    elif cookie == "twice":
        user.session = f"{good}; {SESSION_COOKIE}=other"
    stack.upstream_seen.clear()
    refused = user.api("GET", "/bff/api/orders")
    assert refused.status_code == 401
    assert refused.json()["error"] == "login_required"
    assert f"{SESSION_COOKIE}=;" in refused.headers["set-cookie"]
    assert user.get("/bff/session").status_code == 401
    assert stack.upstream_seen == []
    if cookie == "expired":
        assert stack.record(good) is None  # the ended session is deleted


def test_a_state_mismatch_is_refused_and_stores_nothing(stack: Stack, user: SpaUser) -> None:
    url, login = user.start_login()
    location = user.authorize(url)
    forged = re.sub(r"state=[^&]+", "state=forged", location)
    refused = user.callback(forged, login)
    assert refused.status_code == 400
    assert "state" in refused.text
    assert SESSION_COOKIE not in set_cookies(refused)
    assert stack.token_calls == []  # the code was never exchanged
    assert "set-cookie" not in refused.headers  # the sign-in in progress keeps its cookie
    # A forged answer (a link an attacker sends) does not end the sign-in in progress: the real
    # answer still finishes it, once.
    real = user.callback(location, login)
    assert real.status_code in (302, 303) and SESSION_COOKIE in set_cookies(real)
    assert user.callback(location, login).status_code == 400


@pytest.mark.parametrize("iss", ["http://evil.example", None])
def test_an_iss_mismatch_or_absence_is_refused(
    stack: Stack, user: SpaUser, iss: str | None
) -> None:
    url, login = user.start_login()
    location = user.authorize(url)
    assert f"iss={stack.server.base_url}".replace(":", "%3A").replace("/", "%2F") in location
    changed = re.sub(r"&?iss=[^&]+", "", location)
    if iss is not None:
        changed += "&iss=" + iss
    refused = user.callback(changed, login)
    assert refused.status_code == 400
    assert "issuer" in refused.text
    assert SESSION_COOKIE not in set_cookies(refused)
    assert stack.token_calls == []


def test_a_denied_consent_is_a_clear_error(stack: Stack, user: SpaUser) -> None:
    url, login = user.start_login()
    refused = user.callback(user.authorize(url, consent="deny"), login)
    assert refused.status_code == 400
    assert "access_denied" in refused.text
    assert SESSION_COOKIE not in set_cookies(refused)


def test_a_replayed_or_cookieless_callback_is_refused(stack: Stack, user: SpaUser) -> None:
    url, login = user.start_login()
    location = user.authorize(url)
    assert user.callback(location, None).status_code == 400  # another browser: no login cookie
    first = user.callback(location, login)
    assert first.status_code == 302
    replayed = user.callback(location, login)
    assert replayed.status_code == 400
    assert SESSION_COOKIE not in set_cookies(replayed)
    assert stack.token_calls == ["authorization_code"]


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("GET", {}),  # no CSRF header
        ("GET", {"x-tokensmith-csrf": "0"}),
        ("GET", {**CSRF, "sec-fetch-site": "cross-site"}),
        ("GET", {**CSRF, "sec-fetch-site": "same-site"}),
        ("POST", {**CSRF}),  # no Origin
        ("POST", {**CSRF, "origin": "http://evil.example"}),
        ("DELETE", {**CSRF, "origin": "null"}),
        ("POST", {"origin": "{base}"}),  # the Origin alone is not enough
    ],
)
def test_csrf_refusals_are_403_and_reach_no_upstream(
    stack: Stack, user: SpaUser, method: str, headers: dict[str, str]
) -> None:
    user.sign_in()
    headers = {k: v.replace("{base}", stack.base) for k, v in headers.items()}
    refused = user.raw(method, "/bff/api/orders", headers)
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert "access-control-allow-origin" not in refused.headers
    assert stack.upstream_seen == []


def test_no_cors_is_offered(stack: Stack, user: SpaUser) -> None:
    user.sign_in()
    preflight = user.raw(
        "OPTIONS",
        "/bff/api/orders",
        {"origin": "http://evil.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 403
    assert not any(k.startswith("access-control-") for k in preflight.headers)


def test_logout_needs_csrf_then_revokes_and_clears(
    stack: Stack, user: SpaUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="tokensmith.bff")
    user.sign_in()
    record = stack.record(user.session or "")
    assert record is not None and record.refresh_token is not None
    assert user.raw("POST", "/bff/logout", {"origin": stack.base}).status_code == 403
    assert (
        user.raw("POST", "/bff/logout", {**CSRF, "origin": "http://evil.example"}).status_code
        == 403
    )
    assert user.get("/bff/session").status_code == 200  # a refused logout changed nothing

    out = user.api("POST", "/bff/logout")
    assert out.status_code == 200
    assert f"{SESSION_COOKIE}=;" in out.headers["set-cookie"]
    assert stack.introspect(record.refresh_token) == {"active": False}
    assert stack.introspect(record.access_token) == {"active": False}
    assert stack.record(user.session or "") is None
    assert user.get("/bff/session").status_code == 401
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "signed in" in logged  # the BFF did log, and never a token or the cookie
    for secret in (record.access_token, record.refresh_token, user.session or ""):
        assert secret not in logged


def test_concurrent_requests_with_an_expiring_token_refresh_once(
    stack: Stack, user: SpaUser
) -> None:
    import concurrent.futures

    user.sign_in()
    before = stack.record(user.session or "")
    assert before is not None
    stack.rewrite(user.session or "", access_expires_at=stack.clock.now() + 5)
    stack.upstream_seen.clear()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: user.api("GET", "/bff/api/orders"), range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert stack.token_calls == ["authorization_code", "refresh_token"]
    after = stack.record(user.session or "")
    assert after is not None
    assert after.refresh_token != before.refresh_token  # rotated, and the new one stored
    tokens = {v for r in stack.upstream_seen for k, v in r["headers"] if k == "authorization"}
    assert tokens == {f"Bearer {after.access_token}"}


def test_an_upstream_refusal_of_the_token_refreshes_and_retries_once(
    stack: Stack, user: SpaUser
) -> None:
    user.sign_in()
    stack.rewrite(user.session or "", access_token="not-a-valid-token")
    called = user.api("GET", "/bff/api/orders")
    assert called.status_code == 200
    assert stack.token_calls == ["authorization_code", "refresh_token"]


def test_a_refused_refresh_ends_the_session(stack: Stack, user: SpaUser) -> None:
    user.sign_in()
    record = stack.record(user.session or "")
    assert record is not None and record.refresh_token is not None
    import httpx

    revoked = httpx.post(
        stack.server.base_url + "/revoke",
        data={"token": record.refresh_token},
        auth=(stack.client.client_id, stack.client.secret or ""),
    )
    assert revoked.status_code == 200
    stack.rewrite(user.session or "", access_expires_at=stack.clock.now())
    stack.upstream_seen.clear()
    refused = user.api("GET", "/bff/api/orders")
    assert refused.status_code == 401
    assert refused.json()["error"] == "login_required"
    assert f"{SESSION_COOKIE}=;" in refused.headers["set-cookie"]
    assert stack.record(user.session or "") is None
    assert stack.upstream_seen == []


def test_unknown_paths_and_bad_paths(stack: Stack, user: SpaUser) -> None:
    user.sign_in()
    assert user.api("GET", "/bff/api/billing").status_code == 404
    assert user.api("GET", "/bff/api/orders/%2e%2e/admin").status_code == 400
    assert user.get("/bff/nothing").status_code == 404
    assert user.raw("GET", "/bff/logout", {}).status_code == 404
    assert stack.upstream_seen == []


def test_an_oversized_body_is_413_before_the_upstream(stack: Stack, user: SpaUser) -> None:
    user.sign_in()
    big = b"x" * (stack.bff.config.max_body_bytes + 1)
    assert user.api("POST", "/bff/api/orders", big).status_code == 413
    assert stack.upstream_seen == []


def test_a_content_length_of_other_digits_is_413_not_a_500(stack: Stack) -> None:
    # "²" is a latin-1 header byte that str.isdigit() takes and int() refuses. Uvicorn's parser
    # stops it before the app; the BFF must not rely on the server it runs under to.
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/bff/api/orders",
        "raw_path": b"/bff/api/orders",
        "query_string": b"",
        "headers": [
            (b"origin", stack.base.encode()),
            *((k.encode(), v.encode()) for k, v in CSRF.items()),
            (b"content-length", "\u00b2".encode("latin-1")),
        ],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    asyncio.run(stack.bff(scope, receive, send))
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error_description"] == "the body is too large"
    assert stack.upstream_seen == []
