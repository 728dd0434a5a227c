"""``tokensmith gateway``: starts from its TOML file, or refuses in one line naming the key."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.guard.servers import StubServer
from tests.support import assert_one_line_error, cli_env, free_port, run_cli

CONFIG = """
[gateway]
issuer = "http://127.0.0.1:{port}"
port = {port}
signing_key_file = "key.pem"
resource = "https://api.example"

[authorization_server]
issuer = "{issuer}"
client_id = "gateway"
client_secret_env = "GW_SECRET"

[[routes]]
path = "/orders"
upstream = "http://127.0.0.1:2"
audience = "orders"
"""


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG.format(port=8080, issuer="http://127.0.0.1:1"))
    result = run_cli(["gateway", "--config", str(config)], cli_env(tmp_path / "var", None))
    assert_one_line_error(result, "client_secret_env", "GW_SECRET")
    config.write_text("[gateway\n")
    broken = run_cli(["gateway", "--config", str(config)], cli_env(tmp_path / "var", None))
    assert_one_line_error(broken, "not valid TOML")


def test_gateway_serves(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG.format(port=port, issuer="http://127.0.0.1:1"))
    env = cli_env(tmp_path / "var", None, GW_SECRET="s3cret")
    process = subprocess.Popen(
        [sys.executable, "-m", "tokensmith", "gateway", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        assert health.status_code == 200
        jwks = httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json").json()
        assert [key["alg"] for key in jwks["keys"]] == ["ES256"]
        assert "d" not in jwks["keys"][0]
        assert (tmp_path / "key.pem").stat().st_mode & 0o077 == 0
        refused = httpx.get(f"http://127.0.0.1:{port}/orders")
        assert refused.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_refused_gateway_credentials_stop_the_start(tmp_path: Path) -> None:
    with StubServer() as issuer:
        issuer.routes["/introspect"] = (401, {}, {"error": "invalid_client"})
        config = tmp_path / "gateway.toml"
        config.write_text(CONFIG.format(port=free_port(), issuer=issuer.base_url))
        env = cli_env(tmp_path / "var", None, GW_SECRET="s3cret-never-shown")
        result = run_cli(["gateway", "--config", str(config)], env)
    assert_one_line_error(result, "authorization_server.client_id / client_secret", "(401)")
    assert "s3cret-never-shown" not in result.stderr  # the secret is named, never shown
    assert issuer.hits["/introspect"] == 1
