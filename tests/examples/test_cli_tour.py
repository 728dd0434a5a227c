"""The README tour's "Sign in from the CLI", as written: step 4's user and public client, then
each command of the step under bash, with ``$BROWSER`` a script that signs in on the real pages
(as the person would), and the answers the README shows. Only the address changes."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_signin import browser_script
from tests.examples.test_guard_tour import TOUR_ISSUER, blocks, console
from tests.oauth.conftest import port, server, settings
from tests.support import REPO, Database, ServerThread, cli_env
from tokensmith.settings import Settings

__all__ = ["browser_script", "port", "server", "settings"]  # borrowed fixtures


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database("sqlite", f"sqlite:///{tmp_path / 'tokensmith.db'}", None)


def section(start: str, end: str) -> str:
    readme = (REPO / "README.md").read_text()
    return readme[readme.index(start) : readme.index(end)]


def test_sign_in_from_the_cli_as_written(
    server: ServerThread, settings: Settings, database: Database, browser_script: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    readme = (REPO / "README.md").read_text()
    (field,) = re.findall(r"^field\(\) \{.*\}$", readme, flags=re.MULTILINE)  # from step 3
    (step_4,) = blocks(section("**4. ", "**Sign in from the CLI.**"), "sh")
    (calls,) = blocks(section("**Sign in from the CLI.**", "**5. "), "console")
    steps = console(calls)

    def moved(text: str) -> str:
        python = f"{shlex.quote(sys.executable)} -m tokensmith"
        return text.replace(TOUR_ISSUER, server.base_url).replace(".venv/bin/tokensmith", python)

    script = ["set -eo pipefail", field, moved(step_4)]
    for index, (command, _) in enumerate(steps):
        script += [f"echo '@@@ {index}'", moved(command), "echo"]
    env = cli_env(
        settings.var_dir,
        database,
        TOKENSMITH_MASTER_KEY=settings.master_key.get_secret_value(),
        TOKENSMITH_CLIENT_HOME=str(tmp_path / "client-home"),
        BROWSER=str(browser_script),
        TEST_PASSWORD="a long password",  # step 4's
    )
    ran = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True,
                         env=env, cwd=settings.var_dir.parent, timeout=120, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    _, *answers = re.split(r"^@@@ \d+\n", ran.stdout, flags=re.MULTILINE)
    assert len(answers) == len(steps) == 4
    shown = [moved(out) for _, out in steps]

    signed_in, kept = answers[0].strip().splitlines()
    subject = re.fullmatch(rf"Signed in to {re.escape(server.base_url)} as alice \((.+)\)\.",
                           signed_in)  # fmt: skip
    assert subject is not None
    assert shown[0].splitlines()[0].split(" (")[0] == signed_in.split(" (")[0]
    assert kept.startswith("Session kept in ")  # the keyring there, the 0600 file here
    assert f"Signed in as alice ({subject[1]})" in answers[1]
    userinfo = json.loads(answers[2])
    assert userinfo.keys() == json.loads(shown[2]).keys()
    assert userinfo == {"sub": subject[1], "preferred_username": "alice"}
    assert answers[3].strip() == shown[3].strip()
