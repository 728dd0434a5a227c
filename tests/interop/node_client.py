"""Third-party OAuth clients from npm, run by the interop tests against a real Tokensmith.

``tests/interop/node/`` pins them (package.json and package-lock.json, committed); on first use
``npm ci --ignore-scripts`` installs exactly that lock into ``node/node_modules`` (git-ignored),
under a file lock so that pytest-xdist workers neither race nor install twice. A script is an
ES module in that directory; it talks JSON lines over stdin and stdout, one message a line, and
writes anything else (its errors) to stderr.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import IO, Any

__all__ = ["NODE_DIR", "NodeScript", "ensure_node_modules"]

NODE_DIR = Path(__file__).resolve().parent / "node"
_STAMP = ".tokensmith-installed"
_TIMEOUT = 60.0  # seconds for one answer from a script: a round trip, not a wait


def ensure_node_modules() -> Path:
    """The pinned packages, installed once per lockfile; the directory the scripts run in."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("the interop tests need Node.js 20+ and npm on PATH")
    lock = (NODE_DIR / "package-lock.json").read_bytes()
    wanted = hashlib.sha256(lock).hexdigest()
    stamp = NODE_DIR / "node_modules" / _STAMP
    with open(NODE_DIR / ".install.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # one installer at a time; the others wait, then see it
        if not stamp.exists() or stamp.read_text() != wanted:
            subprocess.run(
                ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_DIR,
                check=True,
                capture_output=True,
                timeout=300,
            )
            stamp.write_text(wanted)
    return NODE_DIR


class NodeScript:
    """One run of ``node <script>``: send a message, read the next one."""

    def __init__(self, script: str, env: dict[str, str] | None = None) -> None:
        home = ensure_node_modules()
        self._process = subprocess.Popen(
            ["node", str(home / script)],
            cwd=home,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"PATH": os.environ.get("PATH", ""), **(env or {})},
        )

    def __enter__(self) -> NodeScript:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(timeout=10)
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()

    def send(self, message: dict[str, Any]) -> None:
        stdin = self._stream(self._process.stdin)
        stdin.write(json.dumps(message) + "\n")
        stdin.flush()

    def receive(self) -> dict[str, Any]:
        """The script's next message; its stderr in the error if it stopped or failed."""
        line = self._stream(self._process.stdout).readline()
        if not line:
            self._process.wait(timeout=_TIMEOUT)
            errors = self._stream(self._process.stderr).read()
            raise AssertionError(f"the node script stopped ({self._process.returncode}): {errors}")
        message: dict[str, Any] = json.loads(line)
        if "error" in message and message.get("kind") == "failure":
            raise AssertionError(f"the node script failed: {message['error']}")
        return message

    @staticmethod
    def _stream(stream: IO[str] | None) -> IO[str]:
        assert stream is not None
        return stream
