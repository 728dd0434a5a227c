"""``make bench``: every scenario against Tokensmith and node-oidc-provider, alternating.

    python -m bench.run [--quick] [--seconds 5] [--rounds 3] [--workers 1] [--only cc_jwt,...]

Prints a table and the targets of issue 14, and writes bench/results/latest.json. Every process it
starts is in its own process group and is stopped on exit, error, Ctrl-C, SIGTERM or SIGHUP.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bench import inprocess, spy
from bench.ceiling import CeilingServer
from bench.fixtures import Fixtures, make_fixtures
from bench.load import Request as LoadRequest
from bench.load import run_wrk
from bench.peer_server import PeerServer
from bench.procs import Group, terminate_on_signals
from bench.report import (
    API_KEY_SERVER,
    CEILING,
    ON_POSTGRESQL,
    OTHER_WORKERS,
    PEER,
    SMALL,
    TOKENSMITH,
    Comparison,
    markdown,
    print_report,
    targets,
)
from bench.scenarios import SCENARIOS, Scenario, Server
from bench.stats import Round, summarise
from bench.tokensmith_server import TokensmithServer
from bench.tools import ensure_peer, ensure_wrk, tool_versions

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
LARGE = 1_000_000
MAIN = ("cc_jwt", "cc_opaque", "introspect", "code", "refresh")
POOLED = ("code", "refresh")  # each request consumes a single-use value from a pool
SCALING = ("cc_opaque", "introspect")
PHASES = {
    "main": "every scenario, Tokensmith on SQLite against the peer",
    "postgresql": "Tokensmith on PostgreSQL too, in the same rounds (and in scaling)",
    "workers": "cc_jwt, cc_opaque, introspect with the other worker count on both sides",
    "scaling": "cc_opaque, introspect with 10^3 against --large stored tokens",
    "ceiling": "the framework ceiling on uvloop and on asyncio",
    "apikeys": "API-key verification over HTTP against the framework ceiling",
    "audit": "cc_jwt with the audit trail's request events on and off",
    "grace": "refresh rotation with the refresh grace window on (the default) and off",
    "inprocess": "the guard, API keys and raw primitives in process",
    "profile": "py-spy on a loaded worker: where cc_jwt's and code's CPU goes",
}


@dataclass
class Options:
    seconds: float
    warmup: float
    rounds: int
    connections: int
    workers: int
    large: int
    only: frozenset[str]
    phases: frozenset[str]
    pool_rate: int  # requests per second a pool of single-use values must cover


@dataclass
class Bench:
    options: Options
    home: Path
    wrk: str
    fixtures: Fixtures
    peer_script: Path
    comparisons: list[Comparison] = field(default_factory=list)
    runs: int = 0
    loaded: float = 0.0  # seconds under wrk, warm-ups included
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def tokensmith(self, name: str, backend: str, *, workers: int = 0) -> TokensmithServer:
        server = TokensmithServer(
            self.home / _slug(name),
            backend=backend,
            workers=workers or self.options.workers,
            port=free_port(),
            fixtures=self.fixtures,
        )
        server.name = name
        return server

    def peer(self, name: str = PEER, *, workers: int = 0) -> PeerServer:
        server = PeerServer(
            self.home / _slug(name),
            script=self.peer_script,
            workers=workers or self.options.workers,
            port=free_port(),
            fixtures=self.fixtures,
        )
        server.name = name
        return server

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            yield
        finally:
            took = self.phase_seconds[name] = round(time.monotonic() - started, 1)
            print(f"== {name}: {took:.0f} s", flush=True)

    def compare(self, scenario: Scenario, servers: Sequence[Server], **labels: Any) -> None:
        """Warm each server up, then rounds in alternating order; medians per server."""
        if scenario.key not in self.options.only:
            return
        opts = self.options
        results: dict[str, list[Round]] = {s.name: [] for s in servers}
        for server in servers:
            self.load(server, scenario.build(server, 0), opts.warmup)
        for round_no in range(1, opts.rounds + 1):
            order = servers if round_no % 2 else list(reversed(servers))
            for server in order:
                request = scenario.build(server, round_no)
                results[server.name].append(self.load(server, request, opts.seconds))
        comparison = Comparison(
            scenario.key,
            scenario.title,
            labels,
            {name: summarise(rounds) for name, rounds in results.items()},
            {name: [r.rps for r in rounds] for name, rounds in results.items()},
        )
        self.comparisons.append(comparison)
        print(comparison.line(), flush=True)

    def load(self, server: Loadable, request: LoadRequest, seconds: float) -> Round:
        assert server.group is not None, f"{server.name} is not running"
        self.runs += 1
        self.loaded += seconds
        return run_wrk(
            server.base_url,
            request,
            seconds=seconds,
            connections=self.options.connections,
            script=self.home / f"wrk-{self.runs}.lua",
            server=server.group,
            wrk=self.wrk,
        )


class Loadable(Protocol):
    name: str
    base_url: str
    group: Group | None


class Startable(Protocol):
    def start(self, *, pools: bool, stored_tokens: int) -> None: ...
    def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


def _start(stack: contextlib.ExitStack, server: S, *, pools: bool, stored_tokens: int) -> S:
    """Start ``server``; the stack stops it (also after a failed start: a schema, a group)."""
    stack.callback(server.stop)
    server.start(pools=pools, stored_tokens=stored_tokens)
    return server


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main_phase(bench: Bench) -> None:
    """Every main scenario against the peer, 10^3 stored tokens; then the scaling checks.

    Tokensmith on SQLite and, with the postgresql phase, on PostgreSQL are loaded in the same
    alternating rounds as the peer, so the two databases are compared without the machine's
    drift between them. Each holds its own pools of codes and refresh tokens (the same values,
    each in its own database). The scaling checks reuse these Tokensmith servers.
    """
    opts = bench.options
    keys = [k for k in MAIN if k in opts.only]
    compare = bool(keys) and bool(opts.phases & {"main", "postgresql"})
    scale = "scaling" in opts.phases and bool(opts.only & set(SCALING))
    if not (compare or scale):
        return
    pools = compare and bool(set(keys) & set(POOLED))
    with contextlib.ExitStack() as stack:
        ours = [bench.tokensmith(TOKENSMITH, "sqlite")]
        if "postgresql" in opts.phases:
            ours.append(bench.tokensmith(ON_POSTGRESQL, "postgresql"))
        for server in ours:
            _start(stack, server, pools=pools, stored_tokens=SMALL)
        if compare:
            with contextlib.ExitStack() as only_here:
                peer = _start(only_here, bench.peer(), pools=pools, stored_tokens=SMALL)
                database = "+".join(s.backend for s in ours)
                with bench.phase(f"main comparisons ({database})"):
                    for key in keys:
                        servers: list[Server] = [*ours, peer]
                        bench.compare(SCENARIOS[key], servers, database=database, stored=SMALL)
        if scale:
            for server in ours:
                with bench.phase(f"scaling ({server.backend})"):
                    scaling(bench, server)


def workers_phase(bench: Bench) -> None:
    """The scenarios judged at both worker counts, with the other count on both sides.

    One pair of servers (2 workers each when the run's count is 1) for all of them; the run's
    own count is the main phase's.
    """
    opts = bench.options
    keys = [k for k in OTHER_WORKERS if k in opts.only]
    if not keys:
        return
    other = 2 if opts.workers == 1 else 1
    with contextlib.ExitStack() as stack:
        ts = bench.tokensmith(f"{TOKENSMITH} ({other}w)", "sqlite", workers=other)
        peer = bench.peer(f"{PEER} ({other}w)", workers=other)
        for server in (ts, peer):
            _start(stack, server, pools=False, stored_tokens=SMALL)
        labels = {"database": "sqlite", "stored": SMALL, "workers": other}
        for key in keys:
            bench.compare(SCENARIOS[key], [ts, peer], **labels)


def scaling(bench: Bench, small: TokensmithServer) -> None:
    """The token (opaque) and introspection scenarios with 10^3 and 10^6 stored tokens.

    Two Tokensmith servers, one per size, loaded in the same alternating rounds, so that a change
    in the machine's load does not pass for a cost of the bigger table. The peer is left out:
    its store is a Map, and no target reads its figures here.
    """
    opts = bench.options
    size = f"{opts.large:,}"
    name = f"{small.name[:-1]}, {size})" if small.name.endswith(")") else f"{small.name} ({size})"
    with contextlib.ExitStack() as stack:
        large = _start(
            stack, bench.tokensmith(name, small.backend), pools=False, stored_tokens=opts.large
        )
        for key in SCALING:
            bench.compare(
                SCENARIOS[key],
                [small, large],
                database=small.backend,
                stored=f"{SMALL:,} vs {size}",
            )


def _alternate(
    bench: Bench, servers: Mapping[str, Loadable], requests: Mapping[str, LoadRequest]
) -> dict[str, Any]:
    """Warm-up and measured wrk rounds over ``servers``, alternating; medians per server."""
    opts = bench.options
    rounds: dict[str, list[Round]] = {name: [] for name in servers}
    for index in range(opts.rounds + 1):
        order = list(servers.items())
        order = order if index % 2 else order[::-1]
        for name, server in order:
            result = bench.load(server, requests[name], opts.seconds if index else opts.warmup)
            if index:
                rounds[name].append(result)
    return {name: summarise(r).as_dict() for name, r in rounds.items()}


def ceiling_phase(bench: Bench) -> dict[str, Any]:
    """The framework ceiling: Starlette + uvicorn answering with one HMAC, nothing else, on
    uvloop (what uvicorn picks, and so Tokensmith) and on asyncio's own loop, alternating."""
    opts = bench.options
    servers = {
        loop: CeilingServer(
            bench.home / f"ceiling-{loop}", workers=opts.workers, port=free_port(), loop=loop
        )
        for loop in ("uvloop", "asyncio")
    }
    try:
        for server in servers.values():
            server.start()
        found = _alternate(bench, servers, {loop: s.request() for loop, s in servers.items()})
    finally:
        for server in servers.values():
            server.stop()
    for loop, summary in found.items():
        print(f"framework ceiling on {loop} ({opts.workers}w): {summary['rps']:,.0f} rps")
    return found


def apikey_phase(bench: Bench) -> dict[str, Any]:
    """API-key verification over HTTP (``POST /api-keys/verify``) against the framework ceiling:
    the same stack answering with one HMAC of a header and nothing else."""
    opts = bench.options
    ceiling = CeilingServer(
        bench.home / "ceiling-apikey", workers=opts.workers, port=free_port(), loop="auto"
    )
    with contextlib.ExitStack() as stack:
        ts = _start(stack, bench.tokensmith(API_KEY_SERVER, "sqlite"), pools=False, stored_tokens=0)
        key = ts.create_api_key()
        stack.callback(ceiling.stop)
        ceiling.start()
        requests = {
            API_KEY_SERVER: LoadRequest("/api-keys/verify", "", {"X-API-Key": key}),
            CEILING: ceiling.request(),
        }
        found = _alternate(bench, {API_KEY_SERVER: ts, CEILING: ceiling}, requests)
    ratio = found[API_KEY_SERVER]["rps"] / found[CEILING]["rps"]
    print(f"API-key verification over HTTP: {ratio:.0%} of the framework ceiling (target 80%)")
    return {"servers": found, "ratio": round(ratio, 3), "target": 0.8}


def audit_phase(bench: Bench) -> dict[str, Any]:
    """The token endpoint (``cc_jwt``) with the audit trail's request events on and off."""
    servers: dict[str, TokensmithServer] = {}
    with contextlib.ExitStack() as stack:
        for name, on in (("audit on", "true"), ("audit off", "false")):
            server = bench.tokensmith(name, "sqlite")
            server.extra_env = {"TOKENSMITH_AUDIT_REQUEST_EVENTS": on}
            servers[name] = _start(stack, server, pools=False, stored_tokens=0)
        requests = {name: SCENARIOS["cc_jwt"].build(s, 1) for name, s in servers.items()}
        found = _alternate(bench, servers, requests)
    lost = 1 - found["audit on"]["rps"] / found["audit off"]["rps"]
    print(f"audit trail on the token endpoint: {lost:+.1%} requests per second (target <= 10%)")
    return {"servers": found, "lost": round(lost, 3), "target": 0.1}


_GRACE_ON = f"{TOKENSMITH} (grace 5s)"
_GRACE_OFF = f"{TOKENSMITH} (grace off)"


def grace_phase(bench: Bench) -> dict[str, Any]:
    """Refresh rotation with the grace window on (5 s, the default: every rotation seals its
    successor and its credential's fingerprint) and off (0), in the same alternating rounds,
    each round on a fresh pool of refresh tokens."""
    with contextlib.ExitStack() as stack:
        servers = []
        for name, seconds in ((_GRACE_ON, "5"), (_GRACE_OFF, "0")):
            server = bench.tokensmith(name, "sqlite")
            server.extra_env = {"TOKENSMITH_REFRESH_GRACE": seconds}
            servers.append(_start(stack, server, pools=True, stored_tokens=0))
        bench.compare(SCENARIOS["refresh"], servers, database="sqlite", grace="5s vs 0")
    found = bench.comparisons[-1].as_dict()["servers"]
    on, off = found[_GRACE_ON], found[_GRACE_OFF]
    lost = 1 - on["rps"] / off["rps"]
    print(
        f"refresh grace window: {lost:+.1%} requests per second,"
        f" {on['cpu_us_per_request']} against {off['cpu_us_per_request']} CPU µs per request"
    )
    return {"lost": round(lost, 3)}


def profile_phase(bench: Bench) -> dict[str, Any]:
    """Where the CPU of cc_jwt and of code goes on a loaded worker (bench/spy.py)."""
    found: dict[str, Any] = {}
    for key in ("cc_jwt", "code"):
        home = bench.home / f"profile-{key}"
        home.mkdir()
        found[key] = spy.profile_scenario(
            key,
            home,
            seconds=bench.options.seconds,
            wrk=bench.wrk,
            connections=bench.options.connections,
        )
        spy.print_breakdown(key, found[key])
    return found


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in load],
    }


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of a measured round")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="processes per server, both sides")
    parser.add_argument("--large", type=int, default=LARGE, help="stored tokens, large case")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help="scenario keys, comma-separated"
    )
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help="comma-separated: " + "; ".join(f"{k}: {v}" for k, v in PHASES.items()),
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 round of 2 s, 10^4 large: a smoke test"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.large = 2.0, 1, 10_000
    return Options(
        seconds=args.seconds,
        warmup=args.warmup,
        rounds=args.rounds,
        connections=args.connections,
        workers=args.workers,
        large=args.large,
        only=frozenset(args.only.split(",")),
        phases=frozenset(args.phases.split(",")),
        pool_rate=6000,
    )


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    wrk = ensure_wrk()
    peer_script = ensure_peer()
    before = machine()
    print(f"machine: {before['cpu']}, {before['cores']} cores, load {before['load_average']}")
    with tempfile.TemporaryDirectory(prefix="tokensmith-bench-") as tmp, terminate_on_signals():
        home = Path(tmp)
        per_round = int(opts.pool_rate * max(opts.seconds, opts.warmup)) + 1000
        fixtures = make_fixtures(home, rounds=opts.rounds, per_round=per_round)
        bench = Bench(opts, home, wrk, fixtures, peer_script)
        extra: dict[str, Any] = {}
        with bench.phase("main"):
            main_phase(bench)
        if "workers" in opts.phases:
            with bench.phase("workers"):
                workers_phase(bench)
        if "ceiling" in opts.phases:
            with bench.phase("ceiling"):
                extra["framework_ceiling"] = ceiling_phase(bench)
        if "apikeys" in opts.phases:
            with bench.phase("apikeys"):
                extra["api_key_http"] = apikey_phase(bench)
        if "audit" in opts.phases:
            with bench.phase("audit"):
                extra["audit_overhead"] = audit_phase(bench)
        if "grace" in opts.phases:
            with bench.phase("grace"):
                extra["refresh_grace_cost"] = grace_phase(bench)
        if "inprocess" in opts.phases:
            with bench.phase("inprocess"):
                importlib.import_module("bench.inprocess_tokensmith")  # guard and API-key runs
                extra["inprocess"] = inprocess.run_all()
        if "profile" in opts.phases:
            with bench.phase("profile"):
                extra["profile"] = profile_phase(bench)
    checks = targets(bench.comparisons, extra)
    print_report(bench.comparisons, checks, extra)
    document = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(time.monotonic() - started, 1),
        "loaded_s": round(bench.loaded, 1),
        "phase_s": bench.phase_seconds,
        "machine": before,
        "load_average_after": machine()["load_average"],
        "tools": tool_versions(wrk),
        "options": {k: sorted(v) if isinstance(v, frozenset) else v for k, v in vars(opts).items()},
        "notes": [
            "Audit trail: every scenario runs with it on (the default); audit_overhead compares "
            "cc_jwt with its request events on and off.",
            "node-oidc-provider keeps everything in memory; Tokensmith writes to a real database.",
            "Ratios come from one comparison each: its servers loaded in the same alternating "
            "rounds. Main comparisons hold Tokensmith on SQLite, on PostgreSQL and the peer.",
        ],
        "comparisons": [c.as_dict() for c in bench.comparisons],
        "targets": [dataclasses.asdict(t) for t in checks],
        **extra,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text(markdown(bench.comparisons, checks))
    print(f"wrote {RESULTS}")
    print(f"took {time.monotonic() - started:.0f} s, {bench.loaded:.0f} s of it under load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
