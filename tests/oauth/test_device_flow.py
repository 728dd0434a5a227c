"""The device authorization grant (RFC 8628) through real HTTP against a running server: the
device asks, polls, the person signs in at /device and decides, the device gets its tokens."""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.oauth.conftest import Registered, Registrar, admin_token
from tests.oauth.test_audit_events import events, named
from tests.support import METRICS_AUTH, DevicePageError, ServerThread, approve_device_code
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.device_authorization import DEVICE_CODE_GRANT
from tokensmith.oauth.user_codes import USER_CODE_ALPHABET
from tokensmith.settings import Settings

PASSWORD = "correct horse battery"
_WRONG = "BCDF-GHJK"  # well formed, never issued
_SHOWN = re.compile(rf"[{USER_CODE_ALPHABET}]{{4}}-[{USER_CODE_ALPHABET}]{{4}}")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A one-second interval: the server's clock is real, and a test waits it out (protocol
    tests on a frozen clock cover slow_down and expiry: tests/oauth/test_device_code.py)."""
    return settings.model_copy(update={"device_poll_interval": 1})


@pytest.fixture
def tv_app(register: Registrar) -> Registered:
    """A public app on a device without a browser: the device grant, with refresh tokens."""
    return register(
        NewClient(
            "Living Room TV",
            is_public=True,
            grant_types=(DEVICE_CODE_GRANT, "refresh_token"),
            scope="openid profile api:read",
        )
    )


def start(http: httpx.Client, client_id: str, **extra: str) -> dict[str, object]:
    response = http.post("/device_authorization", data={"client_id": client_id, **extra})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


def poll_after_interval(http: httpx.Client, client_id: str, device_code: object) -> httpx.Response:
    time.sleep(1.05)  # the interval (1 s) since the last poll, counted in whole seconds
    return poll(http, client_id, device_code)


def poll(http: httpx.Client, client_id: str, device_code: object) -> httpx.Response:
    return http.post(
        "/token",
        data={
            "grant_type": DEVICE_CODE_GRANT,
            "device_code": str(device_code),
            "client_id": client_id,
        },
    )


@pytest.mark.backends("sqlite", "postgresql")
def test_the_whole_flow_gives_the_device_its_tokens(
    http: httpx.Client, server: ServerThread, tv_app: Registered, alice: str
) -> None:
    body = start(http, tv_app.client_id, scope="openid api:read")
    assert _SHOWN.fullmatch(str(body["user_code"]))
    assert body["verification_uri"] == f"{server.base_url}/device"
    assert (
        body["verification_uri_complete"]
        == f"{server.base_url}/device?user_code={body['user_code']}"
    )
    assert body["expires_in"] == 600
    assert body["interval"] == 1
    assert str(body["device_code"]).startswith("tsdc_")

    pending = poll(http, tv_app.client_id, body["device_code"])
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"

    done = _approve(server, body)
    assert "connected" in done.text

    tokens = poll_after_interval(http, tv_app.client_id, body["device_code"])
    assert tokens.status_code == 200, tokens.text
    issued = tokens.json()
    assert issued["token_type"] == "Bearer"
    assert issued["scope"] == "api:read openid"
    assert issued["refresh_token"].startswith("tsrt_")
    assert "id_token" in issued
    userinfo = http.get("/userinfo", headers={"authorization": f"Bearer {issued['access_token']}"})
    assert userinfo.json()["sub"] == alice


def test_a_denied_request_is_access_denied_at_the_next_poll(
    http: httpx.Client, server: ServerThread, tv_app: Registered, alice: str
) -> None:
    body = start(http, tv_app.client_id)
    done = approve_device_code(
        server.base_url, str(body["user_code"]), "alice", PASSWORD, approve=False
    )
    assert "not given access" in done.text
    denied = poll_after_interval(http, tv_app.client_id, body["device_code"])
    assert denied.status_code == 400
    assert denied.json()["error"] == "access_denied"


def test_the_link_with_the_code_only_fills_the_box(
    http: httpx.Client, server: ServerThread, tv_app: Registered, alice: str
) -> None:
    """RFC 8628 §5.4: opening verification_uri_complete, even signed in, approves nothing."""
    body = start(http, tv_app.client_id)
    with httpx.Client(base_url=server.base_url, timeout=10) as browser:
        page = browser.get("/device", params={"user_code": str(body["user_code"])})
        assert 'name="password"' in page.text  # sign in first
        csrf = _field(page.text, "csrf_token")
        signed_in = browser.post(
            "/device",
            data={
                "csrf_token": csrf,
                "step": "signin",
                "username": "alice",
                "password": PASSWORD,
                "user_code": str(body["user_code"]),
            },
        )
        assert signed_in.status_code == 200
        assert f'value="{body["user_code"]}"' in signed_in.text  # prefilled, not submitted
        again = browser.get("/device", params={"user_code": str(body["user_code"])})
        assert again.status_code == 200 and 'name="step" value="code"' in again.text
        confirm = browser.post(
            "/device",
            data={"csrf_token": csrf, "step": "code", "user_code": str(body["user_code"])},
        )
        assert "Living Room TV" in confirm.text and "api:read" in confirm.text
    pending = poll(http, tv_app.client_id, body["device_code"])
    assert pending.json()["error"] == "authorization_pending"


def test_the_page_is_served_like_the_login_page(http: httpx.Client) -> None:
    page = http.get("/device")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert "script-src" not in csp and "<script" not in page.text
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()


@pytest.mark.parametrize(
    "form",
    [
        {"step": "code", "user_code": "BCDF-GHJK"},  # no CSRF token
        {"step": "code", "user_code": "BCDF-GHJK", "csrf_token": "forged"},
    ],
)
def test_a_post_without_a_valid_csrf_token_is_refused(
    server: ServerThread, form: dict[str, str]
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as browser:
        browser.get("/device")  # the CSRF cookie is set
        refused = browser.post("/device", data=form)
    assert refused.status_code == 403
    assert "Form expired" in refused.text


def test_code_entry_needs_a_sign_in(server: ServerThread) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as browser:
        csrf = _field(browser.get("/device").text, "csrf_token")
        page = browser.post(
            "/device", data={"csrf_token": csrf, "step": "code", "user_code": "BCDF-GHJK"}
        )
    assert page.status_code == 401 and 'name="password"' in page.text


@pytest.mark.parametrize("step", ["decide", "nonsense"])
def test_a_forged_confirmation_or_step_is_refused(
    server: ServerThread, alice: str, step: str
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as browser:
        csrf = _field(browser.get("/device").text, "csrf_token")
        signed_in = browser.post(
            "/device",
            data={"csrf_token": csrf, "step": "signin", "username": "alice", "password": PASSWORD},
        )
        assert signed_in.status_code == 200
        page = browser.post(
            "/device",
            data={"csrf_token": csrf, "step": step, "grant": "AAAA", "decision": "allow"},
        )
    assert page.status_code == 400


@pytest.fixture
def few_tries(settings: Settings) -> Settings:
    return settings.model_copy(update={"lockout_user_code_failures": 3})


@pytest.mark.parametrize(
    "wrong", ["BCDF-GHJK", "not a code", "bcdf-ghja", "1234-5678", "X" * 200, "BCDF-\x00GHJ"]
)
def test_a_wrong_or_malformed_code_says_so_and_counts(
    http: httpx.Client, server: ServerThread, tv_app: Registered, alice: str, wrong: str
) -> None:
    start(http, tv_app.client_id)
    with httpx.Client(base_url=server.base_url, timeout=10) as browser:
        csrf = _sign_in(browser)
        page = _enter_code(browser, csrf, wrong)
    if "\x00" in wrong:
        assert page.status_code == 400  # a control character: the form is refused whole
        return
    assert page.status_code == 400
    assert "not valid, or it has expired" in page.text


class TestLockout:
    @pytest.fixture
    def settings(self, few_tries: Settings) -> Settings:
        return few_tries

    def test_code_entry_locks_after_the_set_number_of_wrong_codes(
        self, http: httpx.Client, server: ServerThread, tv_app: Registered, alice: str
    ) -> None:
        body = start(http, tv_app.client_id)
        with httpx.Client(base_url=server.base_url, timeout=10) as browser:
            csrf = _sign_in(browser)
            for _ in range(3):
                assert _enter_code(browser, csrf).status_code == 400
            # Locked now, even for the right code: guessing learns nothing more.
            locked = _enter_code(browser, csrf, str(body["user_code"]))
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) > 0
        assert "Too many wrong codes" in locked.text

    def test_signing_in_again_gives_no_new_tries_and_an_operator_lifts_the_lock(
        self,
        http: httpx.Client,
        server: ServerThread,
        tv_app: Registered,
        alice: str,
        register: Registrar,
    ) -> None:
        """The count is the user's, not the session's: a new sign-in is free, and was a new
        set of guesses. ``lockouts clear --account`` (here its HTTP twin) lifts it."""
        token = admin_token(http, register)
        body = start(http, tv_app.client_id)
        for _ in range(3):  # each guess from a new session, as a script would do
            assert _guess_from(server) == 400
        with pytest.raises(DevicePageError, match="429"):
            _approve(server, body)
        _lift_lock(http, token, account="Alice")
        assert "connected" in _approve(server, body).text


class TestAddressLockout:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        limits = {"lockout_user_code_failures": 100, "lockout_user_code_address_failures": 3}
        # The forwarded address is believed from the test's own host only (SECURITY 59).
        return settings.model_copy(update={**limits, "trusted_proxies": "127.0.0.1"})

    def test_new_sessions_from_one_address_share_its_count(
        self, http: httpx.Client, server: ServerThread, tv_app: Registered, alice: str
    ) -> None:
        body = start(http, tv_app.client_id)
        for _ in range(3):
            assert _guess_from(server) == 400
        with pytest.raises(DevicePageError, match="429"):
            _approve(server, body)

    def test_rotating_through_one_ipv6_64_does_not_escape_it(
        self, server: ServerThread, tv_app: Registered, alice: str
    ) -> None:
        """Behind a trusted proxy, each guess from a new address of one /64, in a new session:
        one count (a host is given a /64). The next /64 is another address."""
        for i in range(4):
            status = _guess_from(server, f"2001:db8:0:7::{i + 1:x}")
            assert status == (429 if i == 3 else 400)
        assert _guess_from(server, "2001:db8:0:8::1") == 400

    def test_an_operator_lifts_the_address_lock(
        self,
        http: httpx.Client,
        server: ServerThread,
        tv_app: Registered,
        alice: str,
        register: Registrar,
    ) -> None:
        token = admin_token(http, register)
        body = start(http, tv_app.client_id)
        with httpx.Client(base_url=server.base_url, timeout=10) as browser:
            csrf = _sign_in(browser)
            for _ in range(3):
                assert _enter_code(browser, csrf).status_code == 400
        _lift_lock(http, token, address="127.0.0.1")
        assert "connected" in _approve(server, body).text


def _guess_from(server: ServerThread, address: str | None = None) -> int:
    """A wrong code, typed in a new session (from ``address``, as a trusted proxy forwards it)."""
    headers = {"x-forwarded-for": address} if address else {}
    with httpx.Client(base_url=server.base_url, timeout=10, headers=headers) as browser:
        return _enter_code(browser, _sign_in(browser)).status_code


def _enter_code(browser: httpx.Client, csrf: str, user_code: str = _WRONG) -> httpx.Response:
    return browser.post(
        "/device", data={"csrf_token": csrf, "step": "code", "user_code": user_code}
    )


def _approve(server: ServerThread, body: dict[str, object]) -> httpx.Response:
    """Alice approves the device's code at /device."""
    return approve_device_code(server.base_url, str(body["user_code"]), "alice", PASSWORD)


def _lift_lock(http: httpx.Client, token: str, **which: str) -> None:
    """What ``tokensmith lockouts clear`` does, through its HTTP twin."""
    cleared = http.post(
        "/admin/lockouts/clear", json=which, headers={"authorization": f"Bearer {token}"}
    )
    assert cleared.status_code == 200, cleared.text


def _sign_in(browser: httpx.Client) -> str:
    csrf = _field(browser.get("/device").text, "csrf_token")
    page = browser.post(
        "/device",
        data={"csrf_token": csrf, "step": "signin", "username": "alice", "password": PASSWORD},
    )
    assert page.status_code == 200, page.text
    return csrf


def _field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, html[:400]
    return found.group(1)


# -- /device_authorization and /token: bad input ------------------------------------------------


@pytest.fixture
def web_only(register: Registrar) -> Registered:
    return register(
        NewClient(
            "Web Only",
            is_public=True,
            redirect_uris=("https://app.example.com/cb",),
            scope="openid",
        )
    )


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ({"scope": "openid"}, 401, "invalid_client"),  # no client_id
        ({"client_id": "nobody-registered-this"}, 401, "invalid_client"),
        ({"client_id": "{web_only}"}, 400, "unauthorized_client"),
        ({"client_id": "{tv}", "scope": "admin"}, 400, "invalid_scope"),
        ({"client_id": "{tv}", "scope": "openid  profile"}, 400, "invalid_scope"),
        ({"client_id": "{tv}", "resource": "https://other.example.com"}, 400, "invalid_target"),
        ({"client_id": "{tv}", "scope": "openid\r\nX-Injected: 1"}, 400, "invalid_request"),
    ],
)
def test_a_bad_device_authorization_request_is_refused_in_the_protocols_format(
    http: httpx.Client,
    tv_app: Registered,
    web_only: Registered,
    data: dict[str, str],
    status: int,
    error: str,
) -> None:
    ids = {"{tv}": tv_app.client_id, "{web_only}": web_only.client_id}
    sent = {name: ids.get(value, value) for name, value in data.items()}
    response = http.post("/device_authorization", data=sent)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


def test_a_device_code_in_the_query_string_is_refused(
    http: httpx.Client, tv_app: Registered
) -> None:
    body = start(http, tv_app.client_id)
    response = http.post(
        "/token",
        params={"device_code": str(body["device_code"])},
        data={"grant_type": DEVICE_CODE_GRANT, "client_id": tv_app.client_id},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_polling_with_another_clients_code_or_an_unknown_one_is_invalid_grant(
    http: httpx.Client, tv_app: Registered, register: Registrar
) -> None:
    other = register(
        NewClient("Other TV", is_public=True, grant_types=(DEVICE_CODE_GRANT,), scope="openid")
    )
    body = start(http, tv_app.client_id)
    theirs = poll(http, other.client_id, body["device_code"])
    assert theirs.status_code == 400 and theirs.json()["error"] == "invalid_grant"
    unknown = poll(http, tv_app.client_id, "tsdc_" + "A" * 43)
    assert unknown.json()["error"] == "invalid_grant"


def test_a_client_not_registered_for_the_grant_cannot_poll(
    http: httpx.Client, web_only: Registered
) -> None:
    response = poll(http, web_only.client_id, "tsdc_" + "A" * 43)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_the_page_helper_fails_loudly_on_a_wrong_code(server: ServerThread, alice: str) -> None:
    with pytest.raises(DevicePageError, match="code entry: 400"):
        approve_device_code(server.base_url, "BCDF-GHJK", "alice", PASSWORD)


def test_every_step_is_an_audit_event_and_none_holds_a_code(
    http: httpx.Client,
    server: ServerThread,
    tv_app: Registered,
    alice: str,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every record the server writes, whatever ran before
    body = start(http, tv_app.client_id)
    assert poll(http, tv_app.client_id, body["device_code"]).json()["error"] == (
        "authorization_pending"
    )
    poll(http, tv_app.client_id, body["device_code"])  # too soon: slow_down
    _approve(server, body)
    denied = start(http, tv_app.client_id)
    approve_device_code(server.base_url, str(denied["user_code"]), "alice", PASSWORD, approve=False)
    expected = {
        "device.authorization_issued",
        "device.slow_down",
        "device.code_entered",
        "device.approved",
        "device.denied",
        "login.success",
    }
    found = events(settings, expected)
    # A pending poll is routine: no row each (the metric counts them); slow_down stays an event.
    refusals = [e.detail.get("error") for e in named(found, "token.refused")]
    assert "authorization_pending" not in refusals
    issued = named(found, "device.authorization_issued")
    assert [e.client_id for e in issued] == [tv_app.client_id] * 2
    assert all(e.outcome == "success" for e in named(found, "device.code_entered"))
    # Every record of the server's, with its extra fields; not the test's own HTTP client, whose
    # log names the verification_uri_complete it followed (the user code is in that URL by design).
    server_logs = [vars(r) for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    everything = repr(found) + repr(server_logs)
    for value in (body["device_code"], denied["device_code"]):
        assert str(value) not in everything
    for shown in (body["user_code"], denied["user_code"]):
        assert str(shown) not in everything
        assert str(shown).replace("-", "") not in everything


@pytest.mark.parametrize(
    "query",
    [
        "user_code=BCDF%00GHJK",
        "user_code=BCDF%0D%0AX",
        "user_code=a&user_code=b",
        "x=" + "y" * 9000,
    ],
)
def test_a_bad_query_at_the_page_is_a_clear_400(http: httpx.Client, query: str) -> None:
    response = http.get(f"/device?{query}")
    assert response.status_code in (400, 431)
    assert "\x00" not in response.text


def test_a_long_code_in_the_link_is_cut_not_echoed_whole(http: httpx.Client) -> None:
    response = http.get("/device", params={"user_code": "B" * 300})
    assert response.status_code == 200
    assert "B" * 65 not in response.text


@pytest.mark.parametrize(
    "body",
    [
        b"step=code&user_code=\xff\xfe",  # not UTF-8
        b"step=code&user_code=BCDF-GHJK&user_code=BCDF-GHJL",  # a parameter twice
        b"step=decide&decision=deny&decision=allow",
        b"step=code&user_code=" + b"B" * 70_000,  # over the body limit
    ],
)
def test_a_bad_form_at_the_page_is_a_clear_4xx_and_counts_no_guess(
    server: ServerThread, alice: str, body: bytes
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as browser:
        csrf = _sign_in(browser)
        form = {"content-type": "application/x-www-form-urlencoded"}
        sent = browser.post(
            "/device", content=b"csrf_token=" + csrf.encode() + b"&" + body, headers=form
        )
        assert sent.status_code in (400, 413), sent.text[:300]
        assert "<!doctype html>" in sent.text.lower() and "Traceback" not in sent.text
        for _ in range(5):  # the default 5 tries are all still there
            assert _enter_code(browser, csrf).status_code == 400


@pytest.mark.backends("sqlite", "postgresql")
def test_of_parallel_polls_after_approval_one_gets_tokens(
    server: ServerThread, tv_app: Registered, alice: str
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        body = start(http, tv_app.client_id)
    _approve(server, body)

    def one_poll(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            return poll(http, tv_app.client_id, body["device_code"])

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one_poll, range(8)))
    assert sum(a.status_code == 200 for a in answers) == 1
    assert {a.json()["error"] for a in answers if a.status_code != 200} <= {
        "invalid_grant",
        "slow_down",
    }


def test_a_confidential_client_authenticates_at_both_endpoints(
    http: httpx.Client, server: ServerThread, register: Registrar, alice: str
) -> None:
    kiosk = register(NewClient("Kiosk", grant_types=(DEVICE_CODE_GRANT,), scope="api:read"))
    assert kiosk.secret is not None
    wrong = http.post(
        "/device_authorization", data={"scope": "api:read"}, auth=(kiosk.client_id, "wrong")
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert "basic" in wrong.headers["www-authenticate"].lower()
    body = http.post(
        "/device_authorization", data={"scope": "api:read"}, auth=(kiosk.client_id, kiosk.secret)
    ).json()
    approve_device_code(server.base_url, body["user_code"], "alice", PASSWORD)
    data = {"grant_type": DEVICE_CODE_GRANT, "device_code": body["device_code"]}
    unauthenticated = http.post("/token", data={**data, "client_id": kiosk.client_id})
    assert unauthenticated.status_code == 401
    tokens = http.post("/token", data=data, auth=(kiosk.client_id, kiosk.secret))
    assert tokens.status_code == 200, tokens.text
    assert "refresh_token" not in tokens.json()


@pytest.mark.backends("sqlite", "postgresql")
def test_a_device_code_replayed_at_another_node_revokes_what_the_first_node_gave(
    http: httpx.Client, server: ServerThread, settings: Settings, tv_app: Registered, alice: str
) -> None:
    """Two servers on one database: the second use of a redeemed device code, wherever it
    arrives, takes back the tokens of the first (the sibling of SECURITY 21)."""
    body = start(http, tv_app.client_id, scope="openid api:read")
    _approve(server, body)
    tokens = poll_after_interval(http, tv_app.client_id, body["device_code"]).json()
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    assert http.get("/userinfo", headers=bearer).status_code == 200
    with (
        ServerThread(settings) as other,
        httpx.Client(base_url=other.base_url, timeout=10) as second,
    ):
        replayed = poll_after_interval(second, tv_app.client_id, body["device_code"])
        assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
        assert second.get("/userinfo", headers=bearer).status_code == 401
    assert http.get("/userinfo", headers=bearer).status_code == 401
    refresh = {"grant_type": "refresh_token", "client_id": tv_app.client_id}
    refreshed = http.post("/token", data={**refresh, "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    assert named(events(settings, {"device.replayed"}), "device.replayed")


def test_pending_polls_are_counted_by_the_events_metric(
    http: httpx.Client, tv_app: Registered
) -> None:
    """No audit row per authorization_pending poll, but still a number an operator can watch."""
    sample = re.compile(
        r'^tokensmith_events_total\{event="token\.refused",outcome="failure",'
        r'reason="authorization_pending"\} (\S+)$',
        re.MULTILINE,
    )

    def pending_count() -> float:
        found = sample.search(http.get("/metrics", headers=METRICS_AUTH).text)
        return float(found.group(1)) if found else 0.0

    before = pending_count()
    body = start(http, tv_app.client_id)
    assert poll(http, tv_app.client_id, body["device_code"]).json()["error"] == (
        "authorization_pending"
    )
    assert pending_count() == before + 1
