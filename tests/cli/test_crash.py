"""SECURITY.md case 55: a server killed mid-load keeps every promise it acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.oauth.browser import Browser
from tests.support import Database, cli_env, free_port, run_cli, wait_until_serving
from tokensmith.oauth.pkce import s256

CALLBACK = "https://app.example.com/callback"


def start(env: dict[str, str], port: int, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tokensmith", "serve", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def login(base: str, client_id: str, secret: str) -> dict[str, str]:
    verifier = "v" * 43 + os.urandom(4).hex()
    query = urlencode(
        {
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "scope": "openid",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
    )
    outcome = Browser(base).authorize(f"{base}/authorize?{query}")
    form = {
        "grant_type": "authorization_code",
        "code": outcome.query["code"],
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    response = httpx.post(base + "/token", data=form, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.backends("sqlite", "postgresql")
def test_kill_during_load_then_restart(tmp_path: Path, database: Database) -> None:
    env = cli_env(tmp_path / "var", database)
    made = run_cli(
        [
            "clients",
            "create",
            "--name",
            "app",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--grant-type",
            "client_credentials",
            "--redirect-uri",
            CALLBACK,
            "--scope",
            "openid",
            "--json",
        ],
        env,
    )
    assert made.code == 0, made.stderr
    client_id, secret = made.json()["client_id"], made.json()["client_secret"]
    assert (
        run_cli(
            ["users", "create", "--username", "alice", "--password-stdin"],
            env,
            "correct horse battery\n",
        ).code
        == 0
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    auth = (client_id, secret)

    server = start(env, port, tmp_path)
    try:
        wait_until_serving(base, lambda: server.poll() is None)
        kept, dropped = login(base, client_id, secret), login(base, client_id, secret)
        assert (
            httpx.post(
                base + "/revoke", data={"token": dropped["refresh_token"]}, auth=auth
            ).status_code
            == 200
        )
        assert (
            httpx.post(
                base + "/revoke", data={"token": kept["access_token"]}, auth=auth
            ).status_code
            == 200
        )

        stop = threading.Event()

        def load() -> None:  # bounded: stops when told, or after 200 requests
            with httpx.Client(base_url=base, timeout=5) as client:
                for _ in range(200):
                    if stop.is_set():
                        return
                    try:
                        client.post("/token", data={"grant_type": "client_credentials"}, auth=auth)
                    except httpx.HTTPError:
                        return

        workers = [threading.Thread(target=load) for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(0.5)
        os.killpg(server.pid, signal.SIGKILL)  # no shutdown, no flush: the process just dies
        server.wait(10)
        stop.set()
        for worker in workers:
            worker.join(10)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)

    restarted = start(env, port, tmp_path)
    try:
        wait_until_serving(base, lambda: restarted.poll() is None)
        renewed = httpx.post(
            base + "/token",
            data={"grant_type": "refresh_token", "refresh_token": kept["refresh_token"]},
            auth=auth,
        )
        assert renewed.status_code == 200, renewed.text  # issued before the crash: still works
        gone = httpx.post(
            base + "/token",
            data={"grant_type": "refresh_token", "refresh_token": dropped["refresh_token"]},
            auth=auth,
        )
        assert gone.json()["error"] == "invalid_grant"  # revoked before the crash: still revoked
        inactive = httpx.post(base + "/introspect", data={"token": kept["access_token"]}, auth=auth)
        assert inactive.json() == {"active": False}
        assert httpx.get(base + "/readyz").status_code == 200
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        restarted.wait(20)
