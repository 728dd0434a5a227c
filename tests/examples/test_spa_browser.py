"""The SPA example in real Chromium: sign in through Tokensmith's pages, call the API through the
BFF, and prove in the page that no script can reach a token; a cross-site page gets nowhere;
sign-out revokes the refresh token at the server.

The stack is started as examples/README.md says (``examples/spa_stack.py``, one command), against
a real Tokensmith. Chromium is Debian's (/usr/bin/chromium): missing, the test fails.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.examples.test_stack import _wait
from tests.oauth.conftest import Registered, Registrar, alice, port, register, server, settings
from tests.support import REPO, ServerThread, free_port
from tokensmith.bff.sealing import Sealer, load_or_create_session_key
from tokensmith.oauth.clients import NewClient

__all__ = ["alice", "port", "register", "server", "settings"]  # the protocol tests' fixtures

CHROMIUM = Path("/usr/bin/chromium")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
pytestmark = [pytest.mark.usefixtures("alice"), pytest.mark.slow]


@dataclass
class Spa:
    origin: str  # http://localhost:PORT: the SPA and its BFF
    server: ServerThread
    client: Registered
    store: Path
    key_file: Path

    def tokens(self) -> list[str]:
        """Every access and refresh token the BFF holds, read out of its store."""
        sealer = Sealer(load_or_create_session_key(None, self.key_file))
        with sqlite3.connect(self.store) as db:
            rows = db.execute("SELECT key, value FROM bff_records").fetchall()
        found = []
        for key, value in rows:
            if bytes(key).startswith(b"session:"):
                record = sealer.unseal(bytes(value), bytes(key))
                found += [record["access_token"], record["refresh_token"]]
        return [t for t in found if t]

    def introspect(self, token: str) -> dict[str, Any]:
        response = httpx.post(
            self.server.base_url + "/introspect",
            data={"token": token},
            auth=(self.client.client_id, self.client.secret or ""),
        )
        return dict(response.json())


@pytest.fixture
def spa(server: ServerThread, register: Registrar, tmp_path: Path) -> Iterator[Spa]:
    bff_port, api_port = free_port(), free_port()
    origin = f"http://localhost:{bff_port}"
    client = register(
        NewClient(
            "Orders SPA",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(origin + "/bff/callback",),
            scope="openid profile email orders:read orders:write",
        )
    )
    text = (
        (REPO / "examples" / "bff.toml")
        .read_text()
        .replace("http://127.0.0.1:8000", server.base_url)
        .replace("8700", str(bff_port))
        .replace("9002", str(api_port))
        .replace('"spa"', json.dumps(str(REPO / "examples" / "spa")))
        .replace("var/", f"{tmp_path}/")
    )
    config = tmp_path / "bff.toml"
    config.write_text(text)
    env = {
        **os.environ,
        "BFF_CLIENT_ID": client.client_id,
        "BFF_CLIENT_SECRET": client.secret or "",
    }
    log = (tmp_path / "spa.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "spa_stack.py"), "--config", str(config)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(f"http://127.0.0.1:{bff_port}/bff/session", process)
        _wait(f"http://127.0.0.1:{api_port}/orders", process)
        yield Spa(
            origin, server, client, tmp_path / "bff-sessions.db", tmp_path / "bff-session-key"
        )
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
    assert "Traceback" not in (tmp_path / "spa.log").read_text()


@pytest.fixture
def chromium() -> Iterator[Any]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (make test does)"
    from playwright.sync_api import sync_playwright  # the dev extra installs it

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def test_the_spa_never_sees_a_token(spa: Spa, chromium: Any) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context()
    page = context.new_page()
    bodies: list[str] = []  # every response a script of the page could read

    def read(response: Any) -> None:
        if response.request.resource_type in ("fetch", "xhr"):
            bodies.append(response.text())  # now: a navigation would take the body away

    page.on("response", read)
    page.goto(spa.origin + "/")
    page.wait_for_selector("#sign-in:not([hidden])")

    page.click("#sign-in")  # Tokensmith's own login and consent pages
    page.fill("#username", "alice")
    page.fill("#password", "correct horse battery")
    page.click("button[type=submit]")
    page.click("button[value=allow]")
    page.wait_for_url(spa.origin + "/")
    page.wait_for_selector("#sign-out:not([hidden])")
    assert "alice@example.com" in page.text_content("#status")

    page.click("#add")
    expect(page.locator("#output")).to_contain_text("201")
    page.click("#load")
    expect(page.locator("#output")).to_contain_text("200")
    listed = json.loads(page.text_content("#output").split("\n", 1)[1])
    assert len(listed["orders"]) == 1

    tokens = spa.tokens()
    assert len(tokens) == 2  # the access and the refresh token, held by the BFF alone
    visible = page.evaluate(
        """() => ({
            cookie: document.cookie,
            local: JSON.stringify(Object.entries(localStorage)),
            session: JSON.stringify(Object.entries(sessionStorage)),
        })"""
    )
    assert visible["cookie"] == ""  # the session cookie is HttpOnly: no script reads it
    assert len(bodies) >= 3  # /bff/session, the POST and the GET
    for text in [*visible.values(), *bodies, page.content()]:
        assert not any(token in text for token in tokens)
        assert not JWT.search(text)
    (cookie,) = [c for c in context.cookies() if c["name"].startswith("__Host-")]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"

    _cross_site_requests_fail(spa, context)
    page.click("#load")
    expect(page.locator("#output")).to_contain_text("200")
    assert len(json.loads(page.text_content("#output").split("\n", 1)[1])["orders"]) == 1

    refresh = next(t for t in tokens if not JWT.fullmatch(t))
    assert spa.introspect(refresh)["active"] is True
    page.click("#sign-out")
    page.wait_for_selector("#sign-in:not([hidden])")
    assert spa.introspect(refresh) == {"active": False}
    assert spa.tokens() == []
    context.close()


def _cross_site_requests_fail(spa: Spa, context: Any) -> None:
    """A page of another site (127.0.0.1 is not localhost's site) tries the API, with the
    browser's cookies, by fetch and by a form: nothing gets through, nothing is added."""
    attacker = f"http://127.0.0.1:{free_port()}"
    target = spa.origin + "/bff/api/orders"
    html = f"""<!doctype html><html><body>
        <form id="f" method="post" action="{target}"><input name="x" value="1"></form>
        </body></html>"""
    context.route(
        attacker + "/**",
        lambda route: route.fulfill(status=200, body=html, content_type="text/html"),
    )
    page = context.new_page()
    page.goto(attacker + "/attack.html")
    outcomes = page.evaluate(
        """async (target) => {
            const tries = [
                {method: "POST", credentials: "include"},
                {method: "POST", credentials: "include", headers: {"X-Tokensmith-CSRF": "1"}},
                {method: "GET", credentials: "include", headers: {"X-Tokensmith-CSRF": "1"}},
            ];
            const out = [];
            for (const options of tries) {
                try {
                    const r = await fetch(target, options);
                    out.push("read " + r.status);
                } catch (e) {
                    out.push("failed");
                }
            }
            return out;
        }""",
        target,
    )
    assert outcomes == ["failed", "failed", "failed"]
    with page.expect_navigation() as navigation:
        page.evaluate("document.getElementById('f').submit()")
    assert navigation.value.status == 403  # the BFF refused it: no CSRF header, no Origin match
    page.close()
