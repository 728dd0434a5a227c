"""The device flow against the real server's device grant (RFC 8628), with the person's part
played on the real /device page (tests/support.py approve_device_code): the kit's device_login,
and ``tokensmith login`` falling back to it where no browser can open (a real process, whose
instructions on stderr are read as they come)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.support import REPO, ServerThread, cli_env
from tokensmith.client import FileStore, ServerMetadata, Session, device_login
from tokensmith.settings import Settings

CODE = re.compile(r"\(the code is ([A-Z0-9-]+)\)|enter the code ([A-Z0-9-]+)")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    if "device_poll_interval" not in type(settings).model_fields:
        pytest.skip("this build has no device grant on the server")
    return settings.model_copy(update={"device_poll_interval": 1})


def approve(base_url: str, line: str) -> None:
    from tests.support import approve_device_code  # type: ignore[attr-defined]

    found = CODE.search(line)
    assert found is not None, line
    approve_device_code(base_url, found[1] or found[2], "alice", "correct horse battery")


def test_device_login_against_the_real_server(
    server: ServerThread, metadata: ServerMetadata, store: FileStore, home: Path, alice: str
) -> None:
    assert metadata.device_authorization_endpoint is not None
    approvals: list[threading.Thread] = []

    def notify(line: str) -> None:  # the person reads the line and goes to the page
        approvals.append(threading.Thread(target=approve, args=(server.base_url, line)))
        approvals[-1].start()

    session = device_login(metadata, "tokensmith-cli", store, scope="openid profile email",
                           home=home, notify=notify, dpop=False)  # fmt: skip
    for thread in approvals:
        thread.join()
    with session:
        assert session.stored.subject == alice
        assert session.stored.claims.get("email") == "alice@example.com"
    with Session.load(metadata, "tokensmith-cli", store, home=home) as later:
        token = later.access_token().value  # the stored session refreshes
    answer = httpx.get(metadata.userinfo_endpoint or "",
                       headers={"authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 200 and answer.json()["sub"] == alice


def test_tokensmith_login_falls_back_to_the_device_flow_without_a_browser(
    server: ServerThread, alice: str, tmp_path: Path
) -> None:
    env = cli_env(tmp_path / "var", None, TOKENSMITH_CLIENT_HOME=str(tmp_path / "home"),
                  BROWSER="false", PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{REPO}")  # fmt: skip
    said: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "tokensmith", "login", "--issuer", server.base_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as proc:  # fmt: skip
        assert proc.stderr is not None and proc.stdout is not None
        try:
            for line in proc.stderr:
                said.append(line)
                if CODE.search(line):
                    approve(server.base_url, line)
                    break
            out = proc.stdout.read()
            said += proc.stderr.readlines()
            assert proc.wait(timeout=60) == 0, said
        finally:
            if proc.poll() is None:
                proc.kill()
    assert said[0] == "tokensmith: no browser could be opened; signing in with a code instead\n"
    assert f"Signed in to {server.base_url} as alice" in out
