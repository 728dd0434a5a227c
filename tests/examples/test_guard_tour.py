"""Step 8 of the README's tour, as written: its shell lines under bash (curl included), the guard's
quick start (the same code in README.md and docs/guard.md) under uvicorn, and the answers the
README shows. Only the addresses change: the test's server and API listen on ports of their own.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.oauth.conftest import port, server, settings
from tests.support import REPO, Database, ServerThread, cli_env, free_port
from tokensmith.settings import Settings

__all__ = ["port", "server", "settings"]  # fixtures borrowed from the protocol tests

TOUR_ISSUER = "http://127.0.0.1:8000"
TOUR_API = "http://127.0.0.1:9000"


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database("sqlite", f"sqlite:///{tmp_path / 'tokensmith.db'}", None)


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def step_8() -> str:
    readme = (REPO / "README.md").read_text()
    return readme[readme.index("**8. ") : readme.index("**9. ")]


def quick_start() -> str:
    guard_doc = (REPO / "docs" / "guard.md").read_text()
    return blocks(guard_doc[guard_doc.index("## Quick start") :], "python")[0]


def test_the_readme_shows_the_guards_quick_start_as_it_is() -> None:
    (code,) = blocks(step_8(), "python")
    assert code == quick_start()
    assert f'Guard.for_issuer("{TOUR_ISSUER}", audience="{TOUR_API}")' in code  # a real audience


class Addresses:
    """The tour's addresses, moved to where this test's server and API listen."""

    def __init__(self, issuer: str, api_port: int) -> None:
        self.issuer = issuer
        self.api_port = api_port

    def __call__(self, text: str) -> str:
        return (
            text.replace(TOUR_ISSUER, self.issuer)
            .replace(TOUR_API, f"http://127.0.0.1:{self.api_port}")
            .replace("--port 9000", f"--port {self.api_port}")
            .replace(".venv/bin/tokensmith", f"{shlex.quote(sys.executable)} -m tokensmith")
            .replace(".venv/bin/uvicorn", f"{shlex.quote(sys.executable)} -m uvicorn")
        )


@pytest.fixture
def moved(server: ServerThread) -> Addresses:
    return Addresses(server.base_url, free_port())


@pytest.fixture
def orders_api(moved: Addresses, tmp_path: Path) -> Iterator[None]:
    """orders.py, saved and served the way step 8 says."""
    app_dir = tmp_path / "api"
    app_dir.mkdir()
    (app_dir / "orders.py").write_text(moved(quick_start()))
    (command,) = re.findall(r"`(\.venv/bin/uvicorn [^`]+)`", step_8())
    log = (tmp_path / "api.log").open("w")
    process = subprocess.Popen(
        shlex.split(moved(command)), cwd=app_dir, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "api.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{moved.api_port}/orders", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the orders API did not start"
                time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
    assert "Traceback" not in (tmp_path / "api.log").read_text()


def console(block: str) -> list[tuple[str, str]]:
    """(command, the output the README shows for it) for each ``$ `` line of a console block."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return [(command, "\n".join(shown)) for command, shown in steps]


def test_the_tours_token_passes_the_quick_starts_guard(
    server: ServerThread,
    settings: Settings,
    database: Database,
    moved: Addresses,
    orders_api: None,
) -> None:
    readme = (REPO / "README.md").read_text()
    (field,) = re.findall(r"^field\(\) \{.*\}$", readme, flags=re.MULTILINE)  # from step 3
    (commands,) = blocks(step_8(), "sh")
    (calls,) = blocks(step_8(), "console")
    steps = console(calls)
    script = ["set -eo pipefail", field, moved(commands), 'echo "ORDERS_ID=$ORDERS_ID"']
    for index, (command, _) in enumerate(steps):
        script += [f"echo '@@@ {index}'", moved(command), "echo"]
    env = cli_env(
        settings.var_dir,
        database,
        TOKENSMITH_MASTER_KEY=settings.master_key.get_secret_value(),
    )
    ran = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=settings.var_dir.parent,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    head, *answers = re.split(r"^@@@ \d+\n", ran.stdout, flags=re.MULTILINE)
    orders_id = head.strip().rpartition("ORDERS_ID=")[2]
    assert len(answers) == len(steps) == 3

    # The token of the tour's step is accepted: the guard names its caller.
    _, shown = steps[0]
    assert json.loads(answers[0]).keys() == json.loads(shown).keys() == {"caller"}
    assert json.loads(answers[0]) == {"caller": orders_id}
    assert answers[1].strip() == ""  # a token without resource=, kept in a variable
    # ... is refused, with the answer the README shows, word for word.
    _, shown = steps[2]
    assert json.loads(answers[2]) == json.loads(moved(shown))
