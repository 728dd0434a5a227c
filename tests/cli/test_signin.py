"""``tokensmith login``, ``token``, ``whoami`` and ``logout`` end to end through ``main``,
against a real server; the system browser is a script named by ``$BROWSER`` (which
``webbrowser`` honours) that walks the server's real login and consent pages."""

# The client suite's fixtures are imported by name (a conftest here would give every CLI test
# the protocol suite's settings); the tests' parameters reuse those names.
# ruff: noqa: F811

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.client.conftest import (  # noqa: F401  (fixtures, found by name)
    Registered,
    Registrar,
    alice,
    http,
    port,
    register,
    server,
    settings,
)
from tests.support import (
    ServerThread,
    assert_one_line_error,
    cli_env,
    free_port,
    refused_port,
    run_cli,
)
from tokensmith.oauth.clients import NewClient
from tokensmith.settings import Settings

API = "https://orders.example.com"
# A browser for webbrowser's GenericBrowser: it is called with the URL and waits for us. With
# TEST_BROWSER=broken it fails, as a browser that cannot start does. It signs in as alice, with
# $TEST_PASSWORD or the protocol suite's password.
BROWSER = """#!{python}
import os, re, sys
import httpx

if os.environ.get("TEST_BROWSER") == "broken":
    sys.exit(1)
FIELD = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')
url = sys.argv[1]
with httpx.Client(timeout=30) as web:  # a loaded machine: Argon2 and the other workers
    page = web.get(url)
    origin = f"{{page.url.scheme}}://{{page.url.netloc.decode()}}"
    password = os.environ.get("TEST_PASSWORD", "correct horse battery")
    for action, fields in (("/login", {{"username": "alice", "password": password}}),
                           ("/consent", {{"decision": "allow"}})):
        if f'action="{{action}}"' in page.text:
            page = web.post(origin + action, data={{**dict(FIELD.findall(page.text)), **fields}})
    assert page.status_code == 303, page.status_code
    assert web.get(page.headers["location"]).status_code == 200
"""


@pytest.fixture(scope="session")
def browser_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One path for the whole run: webbrowser reads $BROWSER once per process."""
    path = tmp_path_factory.mktemp("browser") / "browser.py"
    path.write_text(BROWSER.format(python=sys.executable))
    path.chmod(0o700)
    return path


@pytest.fixture
def cli_client(register: Registrar) -> Registered:
    return register(
        NewClient(
            "Tokensmith CLI",
            is_public=True,
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=("http://127.0.0.1/callback",),
            scope="openid profile email api:read",
            allowed_resources=(API,),
        )
    )


@pytest.fixture
def env(tmp_path: Path, browser_script: Path, alice: str) -> dict[str, str]:
    return cli_env(
        tmp_path / "var",
        None,
        TOKENSMITH_CLIENT_HOME=str(tmp_path / "client-home"),
        BROWSER=str(browser_script),
    )


def claims_of(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def sign_in(server: ServerThread, cli_client: Registered, env: dict[str, str], *flags: str) -> None:
    result = run_cli(["login", "--issuer", server.base_url, "--client-id", cli_client.client_id,
                      "--scope", "openid profile email api:read", *flags], env)  # fmt: skip
    assert result.code == 0, result
    assert f"Signed in to {server.base_url} as alice <alice@example.com>" in result.stdout
    assert "no system keyring" in result.stderr  # this machine has none: the file, and where


def test_login_whoami_token_logout(
    server: ServerThread, cli_client: Registered, env: dict[str, str], tmp_path: Path, alice: str
) -> None:
    sign_in(server, cli_client, env, "--no-dpop")  # bearer tokens: DPoP is the next test's
    home = tmp_path / "client-home"
    (session_file,) = (home / "sessions").iterdir()
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    refresh_token = json.loads(session_file.read_text())["refresh_token"]
    assert "dpop_key" not in json.loads(session_file.read_text())

    # The issuer and client are remembered: no options from here on.
    who = run_cli(["whoami"], env)
    assert who.code == 0 and "alice <alice@example.com>" in who.stdout
    assert cli_client.client_id in who.stdout and server.base_url in who.stdout
    described = run_cli(["whoami", "--json"], env).json()
    assert described["issuer"] == server.base_url and described["email"] == "alice@example.com"
    assert described["client_id"] == cli_client.client_id and described["subject"] == alice

    printed = run_cli(["token"], env)
    assert printed.code == 0 and printed.said == ""
    token = printed.stdout.strip()
    answer = httpx.get(server.base_url + "/userinfo", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json()["sub"] == alice
    again = run_cli(["token", "--json"], env).json()
    assert again["access_token"] != token and again["token_type"] == "Bearer"  # a new one each time
    assert again["expires_at"] > 0
    narrow = run_cli(["token", "--scope", "api:read", "--audience", API, "--json"], env).json()
    assert claims_of(narrow["access_token"])["scope"] == "api:read"
    assert API in (claims_of(narrow["access_token"])["aud"])
    for value in (token, again["access_token"], narrow["access_token"]):
        assert value not in session_file.read_text()  # access tokens never stored

    # An API this client may not target: the server's refusal in one line, and (a refused
    # request changes no state) the session goes on.
    assert_one_line_error(run_cli(["token", "--audience", "https://other.example"], env),
                          "invalid_target")  # fmt: skip
    assert run_cli(["token"], env).code == 0
    last_refresh_token = json.loads(session_file.read_text())["refresh_token"]
    out = run_cli(["logout", "--json"], env)
    assert out.code == 0 and out.json() == {
        "issuer": server.base_url, "client_id": cli_client.client_id, "revoked": True
    }  # fmt: skip
    assert list((home / "sessions").iterdir()) == []
    # The first refresh token was rotated by `token`; the family is revoked at logout: the
    # refresh token the store held last is dead, and so is the first (reuse, or revoked).
    assert refresh_token != last_refresh_token
    for value in (refresh_token, last_refresh_token):
        dead = httpx.post(server.base_url + "/token", data={
            "grant_type": "refresh_token", "refresh_token": value,
            "client_id": cli_client.client_id})  # fmt: skip
        assert dead.json()["error"] == "invalid_grant"
    assert_one_line_error(run_cli(["whoami"], env), "not signed in")
    assert_one_line_error(run_cli(["token"], env), "not signed in")
    assert_one_line_error(run_cli(["logout"], env), "not signed in")


def test_login_binds_the_session_with_dpop(
    server: ServerThread, cli_client: Registered, env: dict[str, str], tmp_path: Path, alice: str
) -> None:
    """The server offers DPoP: `tokensmith login` binds the session to a key stored with it, and
    every later `tokensmith token` (a new process each time) refreshes with that same key."""
    from tokensmith.jose.dpop import jwk_thumbprint, make_proof, public_jwk

    sign_in(server, cli_client, env)
    (session_file,) = (tmp_path / "client-home" / "sessions").iterdir()
    key = json.loads(session_file.read_text())["dpop_key"]
    jkt = jwk_thumbprint(public_jwk(key["jwk"]))
    plain = run_cli(["token"], env)
    assert plain.code == 0 and "DPoP token" in plain.stderr
    assert key["jwk"]["d"] not in plain.stdout + plain.stderr
    printed = run_cli(["token", "--json"], env).json()
    assert printed["token_type"] == "DPoP"
    token = printed["access_token"]
    assert claims_of(token)["cnf"] == {"jkt": jkt}
    userinfo = server.base_url + "/userinfo"
    as_bearer = httpx.get(userinfo, headers={"authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401  # stolen from the terminal, it is useless alone
    proof = make_proof(key["jwk"], method="GET", url=userinfo, now=int(time.time()),
                       access_token=token, alg=key["alg"])  # fmt: skip
    proved = httpx.get(userinfo, headers={"authorization": f"DPoP {token}", "dpop": proof})
    assert proved.status_code == 200, proved.text
    assert proved.json()["sub"] == alice


def test_login_json_and_logout_with_the_server_gone(
    server: ServerThread, cli_client: Registered, env: dict[str, str], tmp_path: Path
) -> None:
    result = run_cli(["login", "--issuer", server.base_url, "--client-id", cli_client.client_id,
                      "--json"], env)  # fmt: skip
    assert result.code == 0, result
    body = result.json()
    assert body["issuer"] == server.base_url and body["name"] == "alice"
    assert "refresh_token" not in result.stdout and "access_token" not in result.stdout
    server.__exit__()
    assert_one_line_error(run_cli(["token"], env), "unreachable")
    out = run_cli(["logout"], env)
    assert out.code == 0 and "on this machine only" in out.stdout
    assert list((tmp_path / "client-home" / "sessions").iterdir()) == []


def test_bad_input_is_a_one_line_error(
    server: ServerThread, cli_client: Registered, env: dict[str, str]
) -> None:
    assert_one_line_error(run_cli(["whoami"], env), "no issuer", "--issuer")
    assert_one_line_error(run_cli(["login", "--issuer", "http://auth.example.com"], env), "https")
    gone = f"http://127.0.0.1:{refused_port()}"
    assert_one_line_error(run_cli(["login", "--issuer", gone], env), "unreachable")
    other = server.base_url.replace("127.0.0.1", "localhost")
    assert_one_line_error(run_cli(["login", "--issuer", other], env), "another issuer")
    unknown = run_cli(["login", "--issuer", server.base_url, "--client-id", "nobody"], env)
    assert unknown.code != 0 and "Traceback" not in unknown.stderr


def test_the_issuer_from_the_environment(
    server: ServerThread, cli_client: Registered, env: dict[str, str]
) -> None:
    env = {**env, "TOKENSMITH_ISSUER": server.base_url}
    assert_one_line_error(run_cli(["whoami"], env), f"not signed in to {server.base_url}")
    assert_one_line_error(run_cli(["token"], env), "not signed in", "tokensmith-cli")


def test_with_a_system_keyring_nothing_is_written_to_disk(
    server: ServerThread, cli_client: Registered, env: dict[str, str], tmp_path: Path
) -> None:
    import keyring

    from tests.client.test_storage import MemoryKeyring

    before, backend = keyring.get_keyring(), MemoryKeyring()
    keyring.set_keyring(backend)  # the command runs in this process (run_cli): its keyring
    try:
        result = run_cli(["login", "--issuer", server.base_url, "--client-id",
                          cli_client.client_id], env)  # fmt: skip
        assert result.code == 0 and result.said == "", result
        assert "Session kept in the system keyring" in result.stdout
        assert list(backend.entries) == [
            ("tokensmith", f"{server.base_url} {cli_client.client_id}")
        ]
        assert not (tmp_path / "client-home" / "sessions").exists()
        assert run_cli(["token"], env).code == 0
        assert run_cli(["logout"], env).code == 0 and backend.entries == {}
    finally:
        keyring.set_keyring(before)


def test_no_browser_and_no_device_flow_is_a_one_line_error(
    settings: Settings, register: Registrar, env: dict[str, str]
) -> None:
    # A second server, on the same database, with the device grant switched off: login has
    # nothing to fall back to.
    other = free_port()
    no_device = settings.model_copy(
        update={"grant_types": "authorization_code refresh_token",
                "issuer": f"http://127.0.0.1:{other}"}
    )  # fmt: skip
    with ServerThread(no_device, port=other) as server:
        metadata = httpx.get(server.base_url + "/.well-known/openid-configuration").json()
        assert "device_authorization_endpoint" not in metadata
        client = register(
            NewClient(
                "Tokensmith CLI",
                is_public=True,
                grant_types=("authorization_code", "refresh_token"),
                redirect_uris=("http://127.0.0.1/callback",),
                scope="openid profile",
            )
        )
        env = {**env, "TEST_BROWSER": "broken"}
        result = run_cli(["login", "--issuer", server.base_url, "--client-id", client.client_id],
                         env)  # fmt: skip
    assert_one_line_error(result, "no browser could be opened")
    assert not os.path.exists(Path(env["TOKENSMITH_CLIENT_HOME"]) / "config.json")
