"""``make bench``: every scenario against Tokensmith and node-oidc-provider, alternating.

    python -m bench.run [--quick] [--seconds 5] [--rounds 3] [--workers 1] [--only cc_jwt,...]

Prints a table and the targets, and writes bench/results/latest.json. Every process it starts is
in its own process group and is stopped on exit, error, Ctrl-C, SIGTERM or SIGHUP.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import inprocess
from bench.ceiling import CeilingServer
from bench.fixtures import Fixtures, make_fixtures
from bench.load import Request as LoadRequest
from bench.load import run_wrk
from bench.peer_server import PeerServer
from bench.procs import terminate_on_signals
from bench.report import Comparison, markdown, print_report, targets
from bench.scenarios import SCENARIOS, Scenario, Server
from bench.stats import Round, summarise
from bench.tokensmith_server import TokensmithServer
from bench.tools import ensure_peer, ensure_wrk, tool_versions

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
SMALL, LARGE = 1_000, 1_000_000
MAIN = ("cc_jwt", "cc_opaque", "introspect", "code", "refresh")
SCALING = ("cc_opaque", "introspect")


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
    peers: dict[bool, PeerServer] = field(default_factory=dict)

    def peer(self, *, large: bool = False) -> PeerServer:
        """The peer with 10^3 stored tokens and the pools, or the large one; each started once."""
        if large not in self.peers:
            stored = self.options.large if large else SMALL
            peer = PeerServer(
                self.home / f"peer-{stored}",
                script=self.peer_script,
                workers=self.options.workers,
                port=free_port(),
                fixtures=self.fixtures,
            )
            if large:
                peer.name += f" ({stored:,})"
            self.peers[large] = peer
            peer.start(pools=not large, stored_tokens=stored)
        return self.peers[large]

    def stop_peers(self) -> None:
        for peer in self.peers.values():
            peer.stop()

    def compare(self, scenario: Scenario, servers: Sequence[Server], **labels: Any) -> None:
        """Warm each server up, then rounds in alternating order; medians per server."""
        if scenario.key not in self.options.only:
            return
        opts = self.options
        results: dict[str, list[Round]] = {s.name: [] for s in servers}
        for server in servers:
            self._load(server, scenario, 0, opts.warmup)
        for round_no in range(1, opts.rounds + 1):
            order = servers if round_no % 2 else list(reversed(servers))
            for server in order:
                results[server.name].append(self._load(server, scenario, round_no, opts.seconds))
        comparison = Comparison(
            scenario.key,
            scenario.title,
            labels,
            {name: summarise(rounds) for name, rounds in results.items()},
            {name: [r.rps for r in rounds] for name, rounds in results.items()},
        )
        self.comparisons.append(comparison)
        print(comparison.line(), flush=True)

    def _load(self, server: Server, scenario: Scenario, round_no: int, seconds: float) -> Round:
        assert server.group is not None, f"{server.name} is not running"
        self.runs += 1
        return run_wrk(
            server.base_url,
            scenario.build(server, round_no),
            seconds=seconds,
            connections=self.options.connections,
            script=self.home / f"wrk-{self.runs}.lua",
            server=server.group,
            wrk=self.wrk,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main_phase(bench: Bench) -> None:
    """Every scenario on SQLite with 10^3 stored tokens; the workers; 10^3 against 10^6."""
    opts, fx, home = bench.options, bench.fixtures, bench.home
    ts = TokensmithServer(
        home / "ts-sqlite", backend="sqlite", workers=opts.workers, port=free_port(), fixtures=fx
    )
    try:
        ts.start(pools=True, stored_tokens=SMALL)
        for key in MAIN:
            bench.compare(SCENARIOS[key], [ts, bench.peer()], database="sqlite", stored=SMALL)
        if "workers" in opts.phases and "cc_jwt" in opts.only:
            workers_phase(bench, ts)
        if "scaling" in opts.phases and opts.only & set(SCALING):
            scaling(bench, ts, "sqlite")
    finally:
        ts.stop()


def workers_phase(bench: Bench, ts: TokensmithServer) -> None:
    """The token endpoint with the other worker count on both sides."""
    opts, fx, home = bench.options, bench.fixtures, bench.home
    other = 2 if opts.workers == 1 else 1
    ts_other = TokensmithServer(
        home / f"ts-w{other}", backend="sqlite", workers=other, port=free_port(), fixtures=fx
    )
    peer_other = PeerServer(
        home / f"peer-w{other}",
        script=bench.peer_script,
        workers=other,
        port=free_port(),
        fixtures=fx,
    )
    ts_other.name += f" ({other}w)"
    peer_other.name += f" ({other}w)"
    try:
        ts_other.start(pools=False, stored_tokens=0)
        peer_other.start(pools=False, stored_tokens=0)
        servers: list[Server] = [ts, ts_other, bench.peer(), peer_other]
        bench.compare(
            SCENARIOS["cc_jwt"], servers, database="sqlite", workers=f"{opts.workers} vs {other}"
        )
    finally:
        ts_other.stop()
        peer_other.stop()


def scaling(bench: Bench, small: TokensmithServer, database: str) -> None:
    """The token (opaque) and introspection scenarios with 10^3 and 10^6 stored tokens.

    Two Tokensmith servers, one per size, and two peers, loaded in the same alternating rounds,
    so that a change in the machine's load does not pass for a cost of the bigger table.
    """
    opts = bench.options
    large = TokensmithServer(
        bench.home / f"ts-{database}-large",
        backend=database,
        workers=opts.workers,
        port=free_port(),
        fixtures=bench.fixtures,
    )
    large.name += f" ({opts.large:,})"
    try:
        large.start(pools=False, stored_tokens=opts.large)
        servers: list[Server] = [small, large, bench.peer(), bench.peer(large=True)]
        for key in SCALING:
            bench.compare(
                SCENARIOS[key], servers, database=database, stored=f"{SMALL:,} vs {opts.large:,}"
            )
    finally:
        large.stop()


def postgres_phase(bench: Bench) -> None:
    opts, fx, home = bench.options, bench.fixtures, bench.home
    ts = TokensmithServer(
        home / "ts-pg", backend="postgresql", workers=opts.workers, port=free_port(), fixtures=fx
    )
    try:
        ts.start(pools=False, stored_tokens=SMALL)
        scaling(bench, ts, "postgresql")
    finally:
        ts.stop()


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
    rounds: dict[str, list[Round]] = {loop: [] for loop in servers}
    try:
        for server in servers.values():
            server.start()
        for index in range(opts.rounds + 1):
            for loop, server in servers.items():
                assert server.group is not None
                result = run_wrk(
                    server.base_url,
                    server.request(),
                    seconds=opts.seconds if index else opts.warmup,
                    connections=opts.connections,
                    script=bench.home / f"ceiling-{loop}-{index}.lua",
                    server=server.group,
                    wrk=bench.wrk,
                )
                if index:
                    rounds[loop].append(result)
    finally:
        for server in servers.values():
            server.stop()
    found = {loop: summarise(r).as_dict() for loop, r in rounds.items()}
    for loop, summary in found.items():
        print(f"framework ceiling on {loop} ({opts.workers}w): {summary['rps']:,.0f} rps")
    return found


def _alternate(bench: Bench, servers: dict[str, Any], requests: dict[str, Any]) -> dict[str, Any]:
    """Warm-up and measured wrk rounds over ``servers``, alternating; medians per server."""
    opts = bench.options
    rounds: dict[str, list[Round]] = {name: [] for name in servers}
    for index in range(opts.rounds + 1):
        order = list(servers.items()) if index % 2 else list(reversed(servers.items()))
        for name, server in order:
            assert server.group is not None
            result = run_wrk(
                server.base_url,
                requests[name],
                seconds=opts.seconds if index else opts.warmup,
                connections=opts.connections,
                script=bench.home
                / f"{''.join(c if c.isalnum() else '-' for c in name)}-{index}.lua",
                server=server.group,
                wrk=bench.wrk,
            )
            if index:
                rounds[name].append(result)
    return {name: summarise(r).as_dict() for name, r in rounds.items()}


def apikey_phase(bench: Bench) -> dict[str, Any]:
    """API-key verification over HTTP (``POST /api-keys/verify``) against the framework ceiling:
    the same stack answering with one HMAC of a header and nothing else."""
    opts = bench.options
    ts = TokensmithServer(
        bench.home / "ts-apikey", backend="sqlite", workers=opts.workers, port=free_port(),
        fixtures=bench.fixtures,
    )  # fmt: skip
    ceiling = CeilingServer(
        bench.home / "ceiling-apikey", workers=opts.workers, port=free_port(), loop="auto"
    )
    try:
        ts.start(pools=False, stored_tokens=0)
        key = ts.create_api_key()
        ceiling.start()
        servers = {"tokensmith /api-keys/verify": ts, "framework ceiling": ceiling}
        requests = {
            "tokensmith /api-keys/verify": LoadRequest("/api-keys/verify", "", {"X-API-Key": key}),
            "framework ceiling": ceiling.request(),
        }
        found = _alternate(bench, servers, requests)
    finally:
        ts.stop()
        ceiling.stop()
    ratio = found["tokensmith /api-keys/verify"]["rps"] / found["framework ceiling"]["rps"]
    print(f"API-key verification over HTTP: {ratio:.0%} of the framework ceiling (target 80%)")
    return {"servers": found, "ratio": round(ratio, 3), "target": 0.8}


def audit_phase(bench: Bench) -> dict[str, Any]:
    """The token endpoint (``cc_jwt``) with the audit trail's request events on and off."""
    opts = bench.options
    servers: dict[str, TokensmithServer] = {}
    for name, on in (("audit on", "true"), ("audit off", "false")):
        server = TokensmithServer(
            bench.home / f"ts-{name.replace(' ', '-')}", backend="sqlite", workers=opts.workers,
            port=free_port(), fixtures=bench.fixtures,
        )  # fmt: skip
        server.extra_env = {"TOKENSMITH_AUDIT_REQUEST_EVENTS": on}
        servers[name] = server
    try:
        for server in servers.values():
            server.start(pools=False, stored_tokens=0)
        requests = {name: SCENARIOS["cc_jwt"].build(s, 1) for name, s in servers.items()}
        found = _alternate(bench, dict(servers), requests)
    finally:
        for server in servers.values():
            server.stop()
    lost = 1 - found["audit on"]["rps"] / found["audit off"]["rps"]
    print(f"audit trail on the token endpoint: {lost:+.1%} requests per second (target <= 10%)")
    return {"servers": found, "lost": round(lost, 3), "target": 0.1}


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
        default="main,workers,scaling,postgresql,ceiling,apikeys,audit,inprocess",
        help="which parts to run, comma-separated",
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
        try:
            if "main" in opts.phases:
                main_phase(bench)
            if "postgresql" in opts.phases and opts.only & set(SCALING):
                postgres_phase(bench)
        finally:
            bench.stop_peers()
        if "ceiling" in opts.phases:
            extra["framework_ceiling"] = ceiling_phase(bench)
        if "apikeys" in opts.phases:
            extra["api_key_http"] = apikey_phase(bench)
        if "audit" in opts.phases:
            extra["audit_overhead"] = audit_phase(bench)
        if "inprocess" in opts.phases:
            importlib.import_module("bench.inprocess_tokensmith")  # the guard and API-key runs
            extra["inprocess"] = inprocess.run_all()
    checks = targets(bench.comparisons)
    print_report(bench.comparisons, checks, extra)
    document = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(time.monotonic() - started, 1),
        "machine": before,
        "load_average_after": machine()["load_average"],
        "tools": tool_versions(wrk),
        "options": {k: sorted(v) if isinstance(v, frozenset) else v for k, v in vars(opts).items()},
        "notes": [
            "Audit trail: every scenario runs with it on (the default); audit_overhead compares "
            "cc_jwt with its request events on and off.",
            "node-oidc-provider keeps everything in memory; Tokensmith writes to a real database.",
        ],
        "comparisons": [c.as_dict() for c in bench.comparisons],
        "targets": [vars(t) if not hasattr(t, "__slots__") else _slots(t) for t in checks],
        **extra,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text(markdown(bench.comparisons, checks))
    print(f"wrote {RESULTS}")
    print(f"took {time.monotonic() - started:.0f} s")
    return 0


def _slots(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


if __name__ == "__main__":
    sys.exit(main())
