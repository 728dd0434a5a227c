"""``tokensmith bff``: starts from its TOML file, or refuses in one line naming the key."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import assert_one_line_error, cli_env, free_port, run_cli

CONFIG = """
[bff]
origin = "http://localhost:{port}"
port = {port}
static_dir = "spa"
store = "sqlite:///var/sessions.db"
session_key_file = "var/session-key"

[authorization_server]
issuer = "http://127.0.0.1:1"
client_id = "spa"
client_secret_env = "BFF_SECRET"

[[upstream]]
prefix = "/bff/api/orders"
url = "http://127.0.0.1:9/orders"
"""


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bff.toml"
    config.write_text(CONFIG.format(port=8700))
    result = run_cli(["bff", "--config", str(config)], cli_env(tmp_path / "var", None))
    assert_one_line_error(result, "client_secret_env", "BFF_SECRET")
    config.write_text(CONFIG.format(port=8700).replace("localhost", "app.example"))
    insecure = run_cli(
        ["bff", "--config", str(config)], cli_env(tmp_path / "var", None, BFF_SECRET="x")
    )
    assert_one_line_error(insecure, "bff.origin", "https")
    config.write_text("[bff\n")
    broken = run_cli(["bff", "--config", str(config)], cli_env(tmp_path / "var", None))
    assert_one_line_error(broken, "not valid TOML")


def test_bff_serves(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "spa").mkdir()
    (tmp_path / "spa" / "index.html").write_text("<!doctype html><title>spa</title>")
    config = tmp_path / "bff.toml"
    config.write_text(CONFIG.format(port=port))
    env = cli_env(tmp_path / "var", None, BFF_SECRET="s3cret")
    process = subprocess.Popen(
        [sys.executable, "-m", "tokensmith", "bff", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None
            try:
                session = httpx.get(base + "/bff/session", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        assert session.status_code == 401
        assert session.json()["error"] == "login_required"
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "<title>spa</title>" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert httpx.get(base + "/../bff.toml").status_code == 404
        assert httpx.get(base + "/%2e%2e/bff.toml").status_code == 404
        assert (tmp_path / "var" / "session-key").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "var" / "sessions.db").stat().st_mode & 0o077 == 0
        down = httpx.get(base + "/bff/login")  # the issuer is not there: a page, not a crash
        assert down.status_code == 502
        assert "not available" in down.text
    finally:
        process.terminate()
        process.wait(timeout=15)
