"""``tokensmith serve`` and ``make run`` as real processes on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jwt as pyjwt
import pytest

from tests.support import (
    METRICS_AUTH,
    METRICS_TOKEN,
    REPO,
    Database,
    assert_one_line_error,
    cli_env,
    free_port,
    run_cli,
    wait_until_serving,
)
from tokensmith.jose.jws import sign_jwt
from tokensmith.runtime.services import open_services
from tokensmith.settings import load_settings


@contextmanager
def process(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        args,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        proc.communicate()


def serve(env: dict[str, str], port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tokensmith", "serve", "--port", str(port), *extra]


def test_second_server_and_busy_port(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var", None)
    port = free_port()
    with process(serve(env, port), env, tmp_path) as first:
        wait_until_serving(f"http://127.0.0.1:{port}", lambda: first.poll() is None)
        again = run_cli(["serve", "--port", str(free_port())], env)
        assert_one_line_error(again, "already running", str(first.pid))
        other = cli_env(tmp_path / "other-var", None)
        busy = run_cli(["serve", "--port", str(port)], other)
        assert_one_line_error(busy, f"port {port}", "already in use")
        # The refusals did not disturb the running server.
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200


@pytest.mark.backends("sqlite", "postgresql")
def test_two_workers_share_one_database(tmp_path: Path, database: Database) -> None:
    env = cli_env(tmp_path / "var", database, TOKENSMITH_METRICS_TOKEN=METRICS_TOKEN)
    port = free_port()
    with process(serve(env, port, "--workers", "2"), env, tmp_path) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, lambda: proc.poll() is None)
        kids = set()
        for _ in range(20):
            with httpx.Client() as fresh:  # a new connection each time, to reach both workers
                kids.add(tuple(k["kid"] for k in fresh.get(base + "/jwks").json()["keys"]))
        assert len(kids) == 1  # every worker publishes the same keys
        assert httpx.get(base + "/metrics").status_code == 401
        for _ in range(4):  # whichever worker answers, it aggregates both (multiprocess mode)
            with httpx.Client() as fresh:
                metrics = fresh.get(base + "/metrics", headers=METRICS_AUTH).text
            assert "tokensmith_http_requests_total" in metrics


def listening_sockets(port: int) -> list[str]:
    """The inodes of the IPv4 sockets listening on ``port`` (state 0A in /proc/net/tcp)."""
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return [r[9] for r in rows if int(r[1].split(":")[1], 16) == port and r[3] == "0A"]


def test_each_worker_listens_on_a_socket_of_its_own(tmp_path: Path) -> None:
    """With one shared socket the first worker awake took every waiting connection; with a
    socket each (SO_REUSEPORT) the kernel spreads them, and a worker restarted gets a new one."""
    env = cli_env(tmp_path / "var", None)
    port = free_port()
    with process(serve(env, port, "--workers", "3"), env, tmp_path) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, lambda: proc.poll() is None)
        deadline = time.monotonic() + 20
        while len(listening_sockets(port)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # the workers start one after another
        before = set(listening_sockets(port))
        assert len(before) == 3
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        workers = [c for c in children if "spawn" in Path(f"/proc/{c}/cmdline").read_text()]
        assert len(workers) == 3
        os.kill(int(workers[0]), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = set(listening_sockets(port))
            if len(now) == 3 and now != before:
                break
            time.sleep(0.2)
        assert len(now) == 3 and len(now & before) == 2  # the replacement has its own
        for _ in range(12):
            with httpx.Client() as fresh:
                assert fresh.get(base + "/healthz").status_code == 200


@pytest.mark.backends("sqlite", "postgresql")
def test_rotation_through_a_running_server(tmp_path: Path, database: Database) -> None:
    """A token signed before rotation verifies after it, and stops once its key is retired."""
    # The old key stays published TOKEN_MAX_LIFETIME after the rotation. Between the rotation and
    # the first look at the JWKS come the CLI's exit and the server's next reload: seconds on a
    # loaded machine (the suite runs in parallel), so the window is well above that.
    env = cli_env(
        tmp_path / "var",
        database,
        TOKENSMITH_TOKEN_MAX_LIFETIME="8",
        TOKENSMITH_ACCESS_TOKEN_TTL="3",
        TOKENSMITH_CLOCK_LEEWAY="0",
        TOKENSMITH_KEYS_REFRESH_INTERVAL="1",
        TOKENSMITH_JWKS_MAX_AGE="0",
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with process(serve(env, port), env, tmp_path) as proc:
        wait_until_serving(base, lambda: proc.poll() is None)
        old_kid = httpx.get(base + "/jwks").json()["keys"][0]["kid"]
        token = asyncio.run(sign_with_active_key(env, tmp_path))
        assert pyjwt.get_unverified_header(token)["kid"] == old_kid

        rotated = run_cli(["keys", "rotate", "--json"], env)
        assert rotated.code == 0, rotated.stderr
        new_kid = rotated.json()["active"]["kid"]
        assert new_kid != old_kid

        jwks = poll(base, lambda keys: keys[0]["kid"] == new_kid)
        assert old_kid in [k["kid"] for k in jwks]
        assert verify(token, jwks)["sub"] == "rotation-test"

        jwks = poll(base, lambda keys: old_kid not in [k["kid"] for k in keys], timeout=30)
        with pytest.raises(pyjwt.PyJWTError):
            verify(token, jwks)


async def sign_with_active_key(env: dict[str, str], cwd: Path) -> str:
    overrides = {
        k.removeprefix("TOKENSMITH_").lower(): v
        for k, v in env.items()
        if k.startswith("TOKENSMITH_")
    }
    services = await open_services(load_settings(**overrides), create_keys=False)
    try:
        claims = {"sub": "rotation-test", "exp": int(time.time()) + 3}
        return sign_jwt(services.keyring.active, claims, typ="at+jwt")
    finally:
        await services.close()


def poll(base: str, condition: object, timeout: float = 15) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        keys = httpx.get(base + "/jwks").json()["keys"]
        if condition(keys) or time.monotonic() > deadline:  # type: ignore[operator]
            assert condition(keys), keys  # type: ignore[operator]
            return keys
        time.sleep(0.2)


def verify(token: str, jwks: list[dict[str, str]]) -> dict[str, object]:
    kid = pyjwt.get_unverified_header(token)["kid"]
    match = [k for k in pyjwt.PyJWKSet.from_dict({"keys": jwks}).keys if k.key_id == kid]
    if not match:
        raise pyjwt.InvalidKeyError(f"{kid} is not published")
    return pyjwt.decode(
        token, match[0].key, algorithms=[match[0].algorithm_name], options={"verify_exp": False}
    )


def test_make_run_serves_discovery_and_jwks(tmp_path: Path) -> None:
    """The README's first command, as written, checked with curl."""
    port = free_port()
    env = cli_env(tmp_path / "var", None)
    with process(["make", "-s", "run", f"PORT={port}"], env, REPO) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, lambda: proc.poll() is None, timeout=120)
        discovery = subprocess.run(
            ["curl", "-sf", base + "/.well-known/openid-configuration"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert f'"issuer":"{base}"' in discovery.stdout
        jwks = subprocess.run(
            ["curl", "-sf", base + "/jwks"], capture_output=True, text=True, check=True
        )
        assert '"kty":"EC"' in jwks.stdout
        assert '"d"' not in jwks.stdout
    assert (tmp_path / "var" / "tokensmith.db").exists()
    assert (tmp_path / "var" / "master.key").exists()
