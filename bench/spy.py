"""Where a request's CPU goes under load: py-spy samples a ``tokensmith serve`` worker while wrk
drives one scenario at it, and the samples are counted by the function they were in (its own
time) and by the part of the stack that function belongs to.

    .venv/bin/python -m bench.run --phases profile            # cc_jwt and code
    .venv/bin/python -m bench.spy cc_jwt 6                     # one scenario, 6 s, on its own

py-spy reads the worker's stacks from outside (ptrace), so the worker runs at full speed; each
sample is one stack of the thread that held the GIL or was in C code (idle threads are left
out). The shares are of samples, which on a saturated worker is its CPU time.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.fixtures import make_fixtures
from bench.load import lua_script
from bench.scenarios import SCENARIOS
from bench.stats import parse_wrk
from bench.tokensmith_server import TokensmithServer

__all__ = ["AREAS", "area_of", "breakdown", "profile_scenario"]

# The part of the stack a leaf frame belongs to, by the first pattern found in its file (the
# patterns are tried in order: "tokensmith/jose/signer" is the signature, the rest of jose not).
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("signature (cryptography)", ("tokensmith/jose/signer.py", "cryptography/")),
    ("HTTP server (uvicorn, httptools, our connection)", ("uvicorn/", "tokensmith/web/connection")),
    ("event loop (uvloop, asyncio)", ("asyncio/", "uvloop/", "selectors.py")),
    (
        "storage (SQLite, SQLAlchemy, drivers)",
        ("tokensmith/persistence/", "sqlalchemy/", "sqlite3"),
    ),
    ("audit trail, anomaly rules, logs", ("tokensmith/audit/", "tokensmith/adapters/logs")),
    (
        "limits and lockouts",
        (
            "tokensmith/adapters/redis_limits",
            "tokensmith/core/lockouts",
            "tokensmith/runtime/throttle",
        ),
    ),
    ("envelope, routing, forms, responses", ("tokensmith/web/", "starlette/", "urllib/")),
    ("protocol (oauth, oidc, jose claims, secrets)", ("tokensmith/",)),
    ("metrics (prometheus-client)", ("prometheus_client/",)),
)
OTHER = "other (interpreter, stdlib)"


def area_of(frame: str) -> str:
    where = frame[frame.rfind("(") + 1 :]
    for area, patterns in AREAS:
        if any(p in where for p in patterns):
            return area
    return OTHER


def breakdown(raw: str, top: int = 15) -> dict[str, Any]:
    """py-spy's ``--format raw`` (``frame;frame;... count`` per line) as shares of samples."""
    own: collections.Counter[str] = collections.Counter()
    areas: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.split(";")[-1] or "(unknown)"
        own[leaf] += int(count)
        areas[area_of(leaf)] += int(count)
        total += int(count)
    share = (lambda n: round(n / total, 4)) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "areas": {area: share(n) for area, n in areas.most_common()},
        "functions": [{"function": f, "share": share(n)} for f, n in own.most_common(top)],
    }


def profile_scenario(
    key: str, home: Path, *, seconds: float, wrk: str = "wrk", connections: int = 64
) -> dict[str, Any]:
    """Start a SQLite Tokensmith with one worker, load it with ``key`` and sample it."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    per_round = int(6000 * seconds) + 1000
    (home / "fixtures").mkdir(parents=True, exist_ok=True)
    fixtures = make_fixtures(home / "fixtures", rounds=1, per_round=per_round)
    server = TokensmithServer(
        home / "server", backend="sqlite", workers=1, port=_port(), fixtures=fixtures
    )
    try:
        server.start(pools=True, stored_tokens=1000)
        assert server.group is not None
        request = SCENARIOS[key].build(server, 1)
        script = home / f"{key}.lua"
        script.write_text(lua_script(request))
        out = home / f"{key}.spy"
        sampler = subprocess.Popen(
            [
                spy,
                "record",
                "--rate",
                "200",
                "--duration",
                f"{seconds + 1:g}",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(out),
                "--pid",
                str(server.group.pgid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        cpu_before = sum(server.group.cpu().values())
        loaded = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--timeout",
                "5s",
                "-s",
                str(script),
                server.base_url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        cpu = sum(server.group.cpu().values()) - cpu_before
        _, err = sampler.communicate(timeout=seconds + 30)
        if sampler.returncode != 0 or not out.exists():
            return {"skipped": f"py-spy failed: {err.strip()[-300:]}"}
        result = parse_wrk(loaded.stdout)
        found = breakdown(out.read_text())
        found["rps"] = round(result.requests / result.seconds) if result.seconds else 0
        found["cpu_us_per_request"] = round(cpu / result.requests * 1e6) if result.requests else 0
        return found
    finally:
        server.stop()


def print_breakdown(key: str, found: dict[str, Any]) -> None:
    if "skipped" in found:
        print(f"profile {key}: skipped ({found['skipped']})")
        return
    print(
        f"profile {key}: {found['samples']} samples, {found['rps']:,} rps, "
        f"{found['cpu_us_per_request']} CPU µs/req"
    )
    for area, share in found["areas"].items():
        print(f"  {share:6.1%}  {area}")
    print("  functions with the most time of their own:")
    for row in found["functions"][:10]:
        print(f"  {row['share']:6.1%}  {row['function']}")


def _port() -> int:
    from bench.run import free_port

    return free_port()


def main() -> None:
    key = sys.argv[1] if len(sys.argv) > 1 else "cc_jwt"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 6.0
    with tempfile.TemporaryDirectory(prefix="tokensmith-spy-") as directory:
        print_breakdown(key, profile_scenario(key, Path(directory), seconds=seconds))


if __name__ == "__main__":
    main()
