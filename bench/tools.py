"""What the bench needs besides Python: wrk (Debian's package) and the pinned npm peer.

Both go into a cache, so a fresh clone runs ``make bench`` with nothing installed by hand:
``~/.cache/tokensmith-bench`` (or ``$TOKENSMITH_BENCH_CACHE``) holds the peer's node_modules,
one directory per lockfile, so a version bump installs beside the old one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["CACHE", "PEERS", "ensure_peer", "ensure_wrk", "tool_versions"]

PEERS = Path(__file__).resolve().parent / "peers"
CACHE = Path(os.environ.get("TOKENSMITH_BENCH_CACHE", Path.home() / ".cache" / "tokensmith-bench"))
PEER_SCRIPT = "node-oidc-provider.mjs"


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise SystemExit("make bench needs wrk: install it (Debian: apt-get install -y wrk)")
    print("installing wrk (apt-get install -y wrk) ...", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, capture_output=True, check=False).returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(install, check=True, capture_output=True)
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("apt-get installed wrk but it is not on PATH")
    return found


def ensure_peer() -> Path:
    """node-oidc-provider at the version of bench/peers/package-lock.json; returns the script."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("make bench needs Node.js 20+ and npm for the peer (node-oidc-provider)")
    lock = (PEERS / "package-lock.json").read_bytes()
    home = CACHE / f"peer-{hashlib.sha256(lock).hexdigest()[:12]}"
    if not (home / "node_modules" / ".bench-installed").exists():
        print(f"installing node-oidc-provider into {home} (npm ci) ...", flush=True)
        home.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(PEERS / name, home / name)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=home,
            check=True,
        )
        (home / "node_modules" / ".bench-installed").touch()
    # ESM resolves packages next to the script, so the script runs from the cache directory.
    shutil.copy(PEERS / PEER_SCRIPT, home / PEER_SCRIPT)
    return home / PEER_SCRIPT


def tool_versions(wrk: str) -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return (done.stdout or done.stderr).strip().splitlines()[0] if done else ""

    lock = (PEERS / "package-lock.json").read_text()
    peer = hashlib.sha256(lock.encode()).hexdigest()[:12]
    return {
        "wrk": first_line([wrk, "--version"]).split(" [")[0],
        "node": first_line(["node", "--version"]),
        "oidc-provider": _pinned_version(),
        "peer_lock": peer,
    }


def _pinned_version() -> str:
    import json

    lock = json.loads((PEERS / "package-lock.json").read_text())
    return str(lock["packages"]["node_modules/oidc-provider"]["version"])
