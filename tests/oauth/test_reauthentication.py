"""A demanded login cannot be skipped (SECURITY.md cases 35 and 56).

With a live session, ``prompt=login`` or an exceeded ``max_age`` shows the login page. Its sealed
form must not issue a code anywhere but through a successful login: not posted to /consent, not
replayed in another browser, not combined with a consent form from before the login.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest
import requests

from tests.oauth.browser import Browser, Outcome
from tests.oauth.conftest import Registered
from tests.oauth.test_authorization import auth_url
from tests.support import ServerThread
from tokensmith.accounts.sessions import Session
from tokensmith.accounts.users import User, hash_password, new_user_id
from tokensmith.core.secrets import keyed_hash, random_token
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

pytestmark = pytest.mark.usefixtures("alice")

LOGIN_FORM = 'action="/login"'
CONSENT_FORM = 'action="/consent"'


@pytest.fixture
def bob(settings: Settings, server: ServerThread) -> str:
    """A second user: bob / bobs own passphrase."""

    async def add() -> str:
        services = await open_services(settings)
        try:
            now = services.clock.now()
            user = User(
                new_user_id(), "bob", "bob@example.com", hash_password("bobs own passphrase"),
                now - 10, now - 10,
            )  # fmt: skip
            await services.users.add(user)
            return user.user_id
        finally:
            await services.close()

    return asyncio.run(add())


def signed_in(server: ServerThread, client: Registered) -> Browser:
    """A browser with a live session and consent already given."""
    browser = Browser(server.base_url)
    url, _ = auth_url(server, client)
    assert "code" in browser.authorize(url).query
    return browser


def with_old_session(server: ServerThread, settings: Settings, user_id: str, age: int) -> Browser:
    """A browser whose session logged in ``age`` seconds ago (planted straight into storage)."""
    value = random_token(32)

    async def add() -> None:
        services = await open_services(settings)
        try:
            now = services.clock.now()
            digest = keyed_hash(services.master.pepper, value)
            await services.sessions.add(Session(digest, user_id, now - age, "pwd", now, now + 3600))
        finally:
            await services.close()

    asyncio.run(add())
    browser = Browser(server.base_url)
    browser.session.cookies.set("ts_session", value, domain="127.0.0.1")
    return browser


def refused(response: requests.Response) -> bool:
    """Our error page or a login page: anything but a redirect carrying a code."""
    return response.status_code != 303 and "code=" not in response.headers.get("location", "")


@pytest.mark.parametrize("overrides", [{"prompt": "login"}, {"max_age": "0"}])
def test_the_login_form_does_not_open_at_consent(
    server: ServerThread, web_app: Registered, overrides: dict[str, str]
) -> None:
    browser = signed_in(server, web_app)
    url, _ = auth_url(server, web_app, **overrides)
    page = browser.open(url)
    assert LOGIN_FORM in page.text
    skipped = browser.submit(page, "/consent", decision="allow")
    assert skipped.status_code == 400
    assert "location" not in skipped.headers
    # The real login still works with the same form, and then issues the code.
    done = browser.submit(page, "/login", username="alice", password="correct horse battery")
    assert "code" in Outcome(done).query


def test_the_consent_form_does_not_open_at_login(server: ServerThread, web_app: Registered) -> None:
    browser = signed_in(server, web_app)
    url, _ = auth_url(server, web_app, prompt="consent")
    page = browser.open(url)
    assert CONSENT_FORM in page.text
    wrong = browser.submit(page, "/login", username="alice", password="correct horse battery")
    assert wrong.status_code == 400
    assert "set-cookie" not in wrong.headers or "ts_session" not in wrong.headers["set-cookie"]


def test_max_age_zero_always_forces_a_login(server: ServerThread, web_app: Registered) -> None:
    browser = signed_in(server, web_app)
    for _ in range(3):  # within the same second as the login, and again right after one
        url, _ = auth_url(server, web_app, max_age="0")
        page = browser.open(url)
        assert LOGIN_FORM in page.text
        done = browser.submit(page, "/login", username="alice", password="correct horse battery")
        assert "code" in Outcome(done).query
    url, _ = auth_url(server, web_app, max_age="0", prompt="none")
    assert Outcome(browser.open(url)).query["error"] == "login_required"


def test_prompt_login_with_prompt_consent(server: ServerThread, web_app: Registered) -> None:
    browser = signed_in(server, web_app)
    url, _ = auth_url(server, web_app, prompt="login consent")
    page = browser.open(url)
    assert LOGIN_FORM in page.text
    assert browser.submit(page, "/consent", decision="allow").status_code == 400
    consent = browser.submit(page, "/login", username="alice", password="correct horse battery")
    assert CONSENT_FORM in consent.text
    assert "code" in Outcome(browser.submit(consent, "/consent", decision="allow")).query


def test_max_age_with_a_stale_session(
    server: ServerThread, web_app: Registered, settings: Settings, alice: str
) -> None:
    browser = with_old_session(server, settings, alice, age=300)
    url, _ = auth_url(server, web_app, max_age="60", prompt="none")
    assert Outcome(browser.open(url)).query["error"] == "login_required"
    url, _ = auth_url(server, web_app, max_age="60")
    page = browser.open(url)
    assert LOGIN_FORM in page.text
    assert refused(browser.submit(page, "/consent", decision="allow"))
    # The same stale session is fine for a looser max_age: consent is asked, and granted.
    url, _ = auth_url(server, web_app, max_age="3600")
    consent = browser.open(url)
    assert CONSENT_FORM in consent.text
    assert "code" in Outcome(browser.submit(consent, "/consent", decision="allow")).query


def test_consent_checks_max_age_again(
    server: ServerThread, web_app: Registered, settings: Settings, alice: str
) -> None:
    """The session passes max_age when the consent page is shown, but not when it is posted."""
    browser = with_old_session(server, settings, alice, age=57)
    url, _ = auth_url(server, web_app, max_age="60")
    consent = browser.open(url)
    assert CONSENT_FORM in consent.text
    time.sleep(3.1)
    late = browser.submit(consent, "/consent", decision="allow")
    assert late.status_code == 200
    assert LOGIN_FORM in late.text
    done = browser.submit(late, "/login", username="alice", password="correct horse battery")
    assert CONSENT_FORM in done.text  # consent is still to be given, now after the fresh login
    assert "code" in Outcome(browser.submit(done, "/consent", decision="allow")).query


def test_a_form_does_not_open_in_another_browser(server: ServerThread, web_app: Registered) -> None:
    victim = signed_in(server, web_app)
    url, _ = auth_url(server, web_app, prompt="login")
    victims_page = victim.open(url)
    thief = signed_in(server, web_app)  # its own session, CSRF cookie and token
    url, _ = auth_url(server, web_app, prompt="consent")
    thiefs_page = thief.open(url)
    own_csrf = dict(_hidden(thiefs_page))["csrf_token"]
    for page, action in ((victims_page, "/consent"), (victims_page, "/login")):
        response = thief.submit(
            page, action, csrf_token=own_csrf, decision="allow",
            username="alice", password="correct horse battery",
        )  # fmt: skip
        assert response.status_code == 400, action
        assert "location" not in response.headers


def test_a_consent_form_from_before_another_login_is_refused(
    server: ServerThread, web_app: Registered, bob: str
) -> None:
    browser = signed_in(server, web_app)  # alice
    url, _ = auth_url(server, web_app, prompt="consent")
    alices_consent = browser.open(url)
    assert CONSENT_FORM in alices_consent.text
    url, _ = auth_url(server, web_app, prompt="login")
    login = browser.open(url)
    bobs_consent = browser.submit(login, "/login", username="bob", password="bobs own passphrase")
    assert CONSENT_FORM in bobs_consent.text  # bob has not consented yet
    stale = browser.submit(alices_consent, "/consent", decision="allow")
    assert stale.status_code == 403
    assert "location" not in stale.headers
    assert "code" in Outcome(browser.submit(bobs_consent, "/consent", decision="allow")).query


def test_a_consent_form_after_logout_asks_for_a_login(
    server: ServerThread, web_app: Registered
) -> None:
    browser = signed_in(server, web_app)
    url, _ = auth_url(server, web_app, prompt="consent")
    consent = browser.open(url)
    browser.session.cookies.clear(domain="127.0.0.1", path="/", name="ts_session")
    again = browser.submit(consent, "/consent", decision="allow")
    assert again.status_code == 200
    assert LOGIN_FORM in again.text


def _hidden(page: requests.Response) -> list[tuple[str, str]]:
    return re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page.text)
