"""`pip install tokensmith` is the guard, and nothing of the server (pyproject.toml, extras).

The project is built into a wheel once, from a copy of the checkout, then installed into a fresh
virtual environment with pip resolving its real dependencies from the configured index: first
without extras (an API that uses the guard), then with `[client]` (the client kit and the session
commands), then with `[gateway]`. Every check runs in that
environment's own interpreter, isolated (-I) from this test run's PYTHONPATH and site-packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO

# One worker builds the wheel once; the second test adds the gateway extra to the first's install.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("light-install")]

# Import names of the server's packages (and the database drivers it may use).
SERVER_MODULES = (
    "aiosqlite",
    "alembic",
    "argon2",
    "asyncpg",
    "jinja2",
    "psycopg",
    "redis",
    "sqlalchemy",
    "starlette",
)
# What only the commands need; the guard needs none of it either.
COMMAND_MODULES = (
    "click",
    "prometheus_client",
    "pydantic",
    "pydantic_settings",
    "typer",
    "uvicorn",
)
# Today 12 with tokensmith itself: joserfc, cryptography (cffi, pycparser), httpx (httpcore, h11,
# anyio, idna, certifi, typing_extensions). The whole server installs about 50.
GUARD_DISTRIBUTIONS_AT_MOST = 16

PROBE = """
import asyncio, importlib.metadata, importlib.util, json, sys, time

import tokensmith, tokensmith.guard, tokensmith.guard.asgi, tokensmith.guard.local_keys
from tokensmith.guard import Guard, JwtValidator, StaticKeys, parse_jwks
from tokensmith.guard.asgi import GuardMiddleware, principal_of
from tokensmith.jose.jws import sign_jwt
from tokensmith.jose.keys import generate_signing_key

# The guard at work on the base install: a signed token through the ASGI middleware.
key = generate_signing_key("ES256")
keys = StaticKeys(parse_jwks({"keys": [key.public_jwk()]}).values())
guard = Guard(jwt=JwtValidator(keys, issuer="https://auth.test", audiences=["https://api.test"]))
now = int(time.time())
token = sign_jwt(key, {"iss": "https://auth.test", "sub": "u1", "aud": "https://api.test",
    "exp": now + 60, "iat": now, "jti": "j1", "client_id": "c1", "scope": "orders:read"},
    typ="at+jwt")

async def api(scope, receive, send):
    body = principal_of(scope).subject.encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})

async def call(authorization):
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": "GET", "path": "/orders", "query_string": b"",
        "headers": [(b"authorization", authorization.encode())], "client": ("127.0.0.1", 1)}
    await GuardMiddleware(api, guard, scopes=["orders:read"])(scope, receive, send)
    return sent[0]["status"], sent[1]["body"].decode()

print(json.dumps({
    "file": tokensmith.__file__,
    "accepted": asyncio.run(call("Bearer " + token)),
    "refused": asyncio.run(call("Bearer " + token[:-4] + "AAAA"))[0],
    "importable": [m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None],
    "loaded": sorted({m.partition(".")[0] for m in sys.modules}),
    "distributions": sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions()),
}))
"""


@dataclass(frozen=True)
class Environment:
    root: Path
    python: Path
    wheel: Path
    env: dict[str, str]

    def pip_install(self, requirement: str) -> float:
        started = time.monotonic()
        pip(["--python", str(self.python), "install", requirement], self.env)
        return time.monotonic() - started

    def probe(self) -> dict[str, object]:
        modules = [*SERVER_MODULES, *COMMAND_MODULES]
        out = run([str(self.python), "-I", "-c", PROBE, *modules], self.env, cwd=self.root)
        result: dict[str, object] = json.loads(out.stdout)
        return result

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        script = self.root / "venv" / "bin" / "tokensmith"
        return subprocess.run(
            [str(script), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
            timeout=60,
            check=False,
        )


def pip(args: list[str], env: dict[str, str]) -> None:
    """This test run's own pip (--python installs into another environment), quietly."""
    run([sys.executable, "-m", "pip", "-q", *args], env)


def run(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False
    )
    assert proc.returncode == 0, f"{args[:6]} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Environment:
    root = tmp_path_factory.mktemp("light-install")
    # This run's PYTHONPATH points at the checkout; the fresh environment must see its own copy.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TOKENSMITH_"))}
    env |= {"PYTHONNOUSERSITE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    started = time.monotonic()
    # Built from a copy, so that setuptools' build/ and *.egg-info stay out of the checkout.
    source = root / "source"
    shutil.copytree(
        REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    pip(["wheel", "--no-deps", "-w", str(root / "dist"), str(source)], env)
    (wheel,) = (root / "dist").glob("tokensmith-*.whl")
    # No pip inside: the distributions counted are the project's alone (this pip installs).
    run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], env)
    print(f"\nwheel and environment: {time.monotonic() - started:.1f} s")
    return Environment(root, root / "venv" / "bin" / "python", wheel, env)


def test_the_guard_alone_installs_none_of_the_server(fresh: Environment) -> None:
    print(f"pip install tokensmith: {fresh.pip_install(str(fresh.wheel)):.1f} s")
    found = fresh.probe()
    distributions = found["distributions"]
    assert isinstance(distributions, list)
    print(f"{len(distributions)} distributions: {', '.join(distributions)}")
    assert str(found["file"]).startswith(str(fresh.root / "venv")), found["file"]
    assert found["accepted"] == [200, "u1"]
    assert found["refused"] == 401
    assert found["importable"] == []
    assert not {*SERVER_MODULES, *COMMAND_MODULES} & set(found["loaded"])  # type: ignore[arg-type]
    assert "tokensmith" in distributions
    assert len(distributions) <= GUARD_DISTRIBUTIONS_AT_MOST

    # The console script is installed too; without the server's packages it says what to do.
    for args in (["version"], ["serve"], ["gateway", "--help"], ["bff", "--help"]):
        result = fresh.command(*args)
        assert result.returncode == 1, result
        assert "Traceback" not in result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        extra = args[0] if args[0] in ("gateway", "bff") else "server"
        assert f"pip install 'tokensmith[{extra}]'" in lines[0]


CLIENT_PROBE = """
import json, sys
import tokensmith.client
from tokensmith.client import ClientCredentialsAuth, FileStore, StoredSession, discover, login
import tokensmith.cli.signin
print(json.dumps({"loaded": sorted({m.partition(".")[0] for m in sys.modules})}))
"""


def test_the_client_extra_runs_the_kit_and_the_session_commands_without_the_server(
    fresh: Environment,
) -> None:
    print(f"pip install tokensmith[client]: {fresh.pip_install(f'{fresh.wheel}[client]'):.1f} s")
    found = fresh.probe()
    importable = set(found["importable"])  # type: ignore[arg-type]
    # Typer and what it stands on (its newer releases bring pydantic), nothing of the server.
    assert "typer" in importable and not importable & {*SERVER_MODULES, "uvicorn"}
    assert not importable & {"prometheus_client", "pydantic_settings"}
    out = run([str(fresh.python), "-I", "-c", CLIENT_PROBE], fresh.env, cwd=fresh.root)
    loaded = set(json.loads(out.stdout)["loaded"])
    assert not {*SERVER_MODULES, "uvicorn", "pydantic_settings"} & loaded
    assert "keyring" not in loaded  # imported when a store is opened, not before

    # The session commands run (here: their own one-line error), the server's say what to install.
    env = {**fresh.env, "TOKENSMITH_CLIENT_HOME": str(fresh.root / "client-home")}
    for args in (["whoami"], ["token"], ["logout"]):
        result = subprocess.run([str(fresh.root / "venv" / "bin" / "tokensmith"), *args],
                                capture_output=True, text=True, env=env, cwd=fresh.root,
                                timeout=60, check=False)  # fmt: skip
        assert result.returncode == 2, result
        assert (
            result.stderr == "tokensmith: no issuer: pass --issuer URL (or set TOKENSMITH_ISSUER)\n"
        )
    assert fresh.command("login", "--help").returncode == 0
    serve = fresh.command("serve")
    assert serve.returncode == 1 and "pip install 'tokensmith[server]'" in serve.stderr


def test_the_gateway_extra_runs_the_gateway_without_the_server(fresh: Environment) -> None:
    print(f"pip install tokensmith[gateway]: {fresh.pip_install(f'{fresh.wheel}[gateway]'):.1f} s")
    found = fresh.probe()
    distributions = found["distributions"]
    assert isinstance(distributions, list)
    print(f"{len(distributions)} distributions with [gateway]")
    assert set(found["importable"]) == set(COMMAND_MODULES)  # type: ignore[arg-type]

    assert fresh.command("gateway", "--help").returncode == 0
    assert fresh.command("bff", "--help").returncode == 0  # Redis only for a shared store
    # The gateway's own one-line errors, as with the full command line.
    result = fresh.command("gateway", "--config", str(fresh.root / "missing.toml"))
    assert result.returncode == 1, result
    assert result.stderr.startswith("tokensmith: "), result.stderr
    assert "Traceback" not in result.stderr
    assert "missing.toml" in result.stderr
    # The server's commands still say which extra they need.
    other = fresh.command("clients", "list")
    assert other.returncode == 1
    assert "pip install 'tokensmith[server]'" in other.stderr
