"""The comparison table and the targets of issue 14, printed and as JSON.

Every ratio is read from one comparison: servers loaded in the same alternating rounds, so a
change in the machine's load does not pass for a difference between them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench import inprocess
from bench.stats import Summary, Target, ratio

__all__ = [
    "ON_POSTGRESQL",
    "PEER",
    "TOKENSMITH",
    "Comparison",
    "markdown",
    "print_report",
    "targets",
]

TOKENSMITH = "tokensmith"  # on SQLite; other Tokensmith servers are named "tokensmith (...)"
ON_POSTGRESQL = "tokensmith (postgresql)"
PEER = "node-oidc-provider"
API_KEY_SERVER, CEILING = "tokensmith /api-keys/verify", "framework ceiling"
SMALL = 1_000  # stored tokens in the comparisons the targets against the peer read

# Against the peer on SQLite: at least this many times its requests per second, p99 no higher.
PEER_TARGETS = {
    "cc_jwt": ("token endpoint (cc, ES256 JWT)", 1.5),
    "cc_opaque": ("token endpoint (cc, opaque)", 1.5),
    "introspect": ("introspection", 1.5),
    "code": ("code exchange", 1.0),
    "refresh": ("refresh rotation", 1.0),
}
# Judged again with the other worker count on both sides (the workers phase).
OTHER_WORKERS = ("cc_jwt", "cc_opaque", "introspect")
# On PostgreSQL: against the peer, or against the same scenario on SQLite in the same rounds.
POSTGRES_VS_PEER = {"cc_opaque": 1.0, "introspect": 1.0}
POSTGRES_VS_SQLITE = {"cc_jwt": 0.6, "code": 0.6, "refresh": 0.6}
SCALING_KEPT = 0.9  # 10^6 stored tokens keep at least 90% of the rate with 10^3
GUARD_FIRST_SIGHT, GUARD_CACHED = 0.85, 200_000
API_KEYS_OF_CEILING, AUDIT_LOST = 0.8, 0.1


@dataclass(frozen=True, slots=True)
class Comparison:
    key: str
    title: str
    labels: dict[str, Any]
    summaries: dict[str, Summary]  # by server name; Tokensmith first
    round_rps: dict[str, list[float]]

    @property
    def reference(self) -> str:
        """What the ratios are against: the peer if it ran, else the first server."""
        return next((n for n in self.summaries if n.startswith(PEER)), next(iter(self.summaries)))

    @property
    def ratio(self) -> float:
        """The first Tokensmith server against the reference."""
        ours = next(n for n in self.summaries if n.startswith(TOKENSMITH))
        return self.ratio_of(ours)

    def ratio_of(self, name: str) -> float:
        return ratio(self.summaries[name].rps, self.summaries[self.reference].rps)

    def ratios(self) -> dict[str, float]:
        return {n: self.ratio_of(n) for n in self.summaries if n != self.reference}

    def line(self) -> str:
        where = " ".join(f"{k}={v}" for k, v in self.labels.items())
        parts = [
            f"{n} {s.rps:,.0f} rps p99 {s.p99_ms:.1f} ms {s.cpu_us_per_request:,.0f} µs/req"
            for n, s in self.summaries.items()
        ]
        ratios = ", ".join(f"{n} {r:.2f}x" for n, r in self.ratios().items())
        return f"{self.key} [{where}]: " + " | ".join(parts) + f" -> {ratios}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.key,
            "title": self.title,
            **self.labels,
            "ratio": round(self.ratio, 3),
            "reference": self.reference,
            "ratios": {n: round(r, 3) for n, r in self.ratios().items()},
            "servers": {
                name: {**s.as_dict(), "round_rps": [round(x) for x in self.round_rps.get(name, [])]}
                for name, s in self.summaries.items()
            },
        }


def _main(comparisons: Sequence[Comparison], key: str) -> Comparison | None:
    """The comparison of ``key`` with 10^3 stored tokens and the run's own worker count."""
    for c in comparisons:
        if c.key == key and c.labels.get("stored") == SMALL and "workers" not in c.labels:
            return c
    return None


def _named(c: Comparison, prefix: str) -> str | None:
    return next((n for n in c.summaries if n.startswith(prefix)), None)


def _versus(a: Summary, b: Summary, *, p99: bool = True) -> str:
    """Both sides' rate, p99 and CPU per request, beside the ratio."""
    found = f"{ratio(a.rps, b.rps):.2f}x ({a.rps:,.0f} vs {b.rps:,.0f} rps"
    found += f", p99 {a.p99_ms:.1f} vs {b.p99_ms:.1f} ms" if p99 else ""
    return found + f", CPU {a.cpu_us_per_request:,.0f} vs {b.cpu_us_per_request:,.0f} µs/req)"


def _against_peer(c: Comparison, name: str, title: str, at_least: float, suffix: str) -> Target:
    """``name`` against the peer of the same comparison: the rate, and a p99 no higher."""
    peer = _named(c, PEER)
    assert peer is not None, f"{c.key}: no peer in the comparison"
    ours, theirs = c.summaries[name], c.summaries[peer]
    return Target(
        f"{title} vs {PEER}{suffix}",
        f">= {at_least:.1f}x rps and p99 <= the peer's",
        _versus(ours, theirs),
        ratio(ours.rps, theirs.rps) >= at_least and ours.p99_ms <= theirs.p99_ms,
    )


def _peer_targets(comparisons: Sequence[Comparison]) -> Iterator[Target]:
    for key, (title, at_least) in PEER_TARGETS.items():
        main = _main(comparisons, key)
        if main is not None and TOKENSMITH in main.summaries and _named(main, PEER):
            yield _against_peer(main, TOKENSMITH, title, at_least, "")
    for c in comparisons:
        if c.key in OTHER_WORKERS and "workers" in c.labels:
            ours = _named(c, TOKENSMITH)
            if ours is not None and _named(c, PEER):
                title, at_least = PEER_TARGETS[c.key]
                workers = c.labels["workers"]
                suffix = f", {workers} worker{'s' if workers != 1 else ''} each"
                yield _against_peer(c, ours, title, at_least, suffix)


def _postgres_targets(comparisons: Sequence[Comparison]) -> Iterator[Target]:
    for key in PEER_TARGETS:
        main = _main(comparisons, key)
        if main is None or ON_POSTGRESQL not in main.summaries:
            continue
        title, pg = PEER_TARGETS[key][0], main.summaries[ON_POSTGRESQL]
        peer = _named(main, PEER)
        if key in POSTGRES_VS_PEER and peer is not None:
            at_least, theirs = POSTGRES_VS_PEER[key], main.summaries[peer]
            yield Target(
                f"{title} on postgresql vs {PEER}",
                f">= {at_least:.1f}x rps",
                _versus(pg, theirs),
                ratio(pg.rps, theirs.rps) >= at_least,
            )
        if key in POSTGRES_VS_SQLITE and TOKENSMITH in main.summaries:
            share, sqlite = POSTGRES_VS_SQLITE[key], main.summaries[TOKENSMITH]
            yield Target(
                f"{title} on postgresql vs on sqlite",
                f">= {share:.0%} of sqlite's rps",
                _versus(pg, sqlite, p99=False),
                ratio(pg.rps, sqlite.rps) >= share,
            )


def _scaling_targets(comparisons: Sequence[Comparison]) -> Iterator[Target]:
    for c in comparisons:
        if c.key not in ("cc_opaque", "introspect") or " vs " not in str(c.labels.get("stored")):
            continue
        small, big = [s for n, s in c.summaries.items() if n.startswith(TOKENSMITH)][:2]
        kept = ratio(big.rps, small.rps)
        cost = ratio(big.cpu_us_per_request, small.cpu_us_per_request)
        yield Target(
            f"{c.key} on {c.labels['database']}, {c.labels['stored']} stored tokens",
            f"<= {1 - SCALING_KEPT:.0%} lost",
            f"{(1 - kept) * 100:+.1f}% rps lost ({small.rps:,.0f} vs {big.rps:,.0f} rps, "
            f"CPU {small.cpu_us_per_request:,.0f} vs {big.cpu_us_per_request:,.0f} µs/req, "
            f"{(cost - 1) * 100:+.1f}%)",
            kept >= SCALING_KEPT,
        )


def _inprocess_targets(rates: Mapping[str, float]) -> Iterator[Target]:
    """The guard, in process on one core: calls per second, and µs per call beside them."""
    for alg in ("es256", "rs256", "eddsa"):
        name = f"guard_first_sight_{alg}"
        bench = inprocess.REGISTRY.get(name)
        mine, raw = rates.get(name), rates.get(bench.baseline or "") if bench else None
        if mine and raw:
            yield Target(
                f"guard first sight {alg}",
                f">= {GUARD_FIRST_SIGHT:.0%} of the raw verify",
                f"{mine / raw:.0%} ({1e6 / mine:.1f} vs {1e6 / raw:.1f} µs per call)",
                mine / raw >= GUARD_FIRST_SIGHT,
            )
    cached = rates.get("guard_cached_es256")
    if cached:
        yield Target(
            "guard cached",
            f">= {GUARD_CACHED:,}/s",
            f"{cached:,.0f}/s ({1e6 / cached:.2f} µs per call)",
            cached >= GUARD_CACHED,
        )


def _http_targets(extra: Mapping[str, Any]) -> Iterator[Target]:
    """API-key verification against the framework ceiling; the audit trail on against off."""
    http = extra.get("api_key_http")
    if http:
        ours, ceiling = (http["servers"][n] for n in (API_KEY_SERVER, CEILING))
        yield Target(
            "API-key verification over HTTP vs the framework ceiling",
            f">= {API_KEYS_OF_CEILING:.0%} of the ceiling's rps",
            f"{http['ratio']:.0%} ({ours['rps']:,.0f} vs {ceiling['rps']:,.0f} rps, CPU "
            f"{ours['cpu_us_per_request']:,} vs {ceiling['cpu_us_per_request']:,} µs/req)",
            http["ratio"] >= API_KEYS_OF_CEILING,
        )
    audit = extra.get("audit_overhead")
    if audit:
        on, off = audit["servers"]["audit on"], audit["servers"]["audit off"]
        yield Target(
            "audit trail on the token endpoint (cc_jwt), on vs off",
            f"<= {AUDIT_LOST:.0%} rps lost",
            f"{audit['lost']:+.1%} rps lost ({on['rps']:,.0f} vs {off['rps']:,.0f} rps, CPU "
            f"{on['cpu_us_per_request']:,} vs {off['cpu_us_per_request']:,} µs/req)",
            audit["lost"] <= AUDIT_LOST,
        )


def _extra_errors(extra: Mapping[str, Any]) -> int:
    """Errors in the HTTP phases outside the comparisons (ceiling, API keys, audit)."""
    phases = [extra.get("framework_ceiling") or {}]
    phases += [(extra.get(k) or {}).get("servers", {}) for k in ("api_key_http", "audit_overhead")]
    return sum(int(s.get("errors", 0)) for servers in phases for s in servers.values())


def targets(
    comparisons: Sequence[Comparison], extra: Mapping[str, Any] | None = None
) -> list[Target]:
    """Every target the run measured; one whose phase or scenario was left out is absent."""
    extra = extra or {}
    found = [*_peer_targets(comparisons), *_postgres_targets(comparisons)]
    found += [*_scaling_targets(comparisons), *_inprocess_targets(extra.get("inprocess") or {})]
    found += _http_targets(extra)
    errors = sum(s.errors for c in comparisons for s in c.summaries.values())
    errors += _extra_errors(extra)
    found.append(Target("errors in every run", "0", str(errors), errors == 0))
    return found


def print_report(
    comparisons: Sequence[Comparison], checks: Sequence[Target], extra: dict[str, Any]
) -> None:
    header = (
        f"{'scenario':<11} {'db':<17} {'stored':>18} {'server':<36} {'rps':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'CPU':>5} {'us/req':>6} {'top':>4} {'err':>4} {'ratio':>6}"
    )
    print()
    print(header)
    print("-" * len(header))
    for c in comparisons:
        ratios = c.ratios()
        for index, (name, s) in enumerate(c.summaries.items()):
            first = index == 0
            versus = f"{ratios[name]:.2f}x" if name in ratios else ""
            print(
                f"{c.key if first else '':<11} {c.labels.get('database', '') if first else '':<17} "
                f"{_stored(c) if first else '':>18} {name:<36} {s.rps:>8,.0f} {s.p50_ms:>7.2f} "
                f"{s.p99_ms:>7.2f} {s.cpu_cores:>5.2f} {s.cpu_us_per_request:>6.0f} "
                f"{s.busiest * 100:>3.0f}% {s.errors:>4} {versus:>6}"
            )
    print("CPU: server cores used; us/req: server CPU per request; top: busiest process's share")
    print("ratio: rps against the peer of the same rounds (without a peer: the first row)")
    for loop, ceiling in (extra.get("framework_ceiling") or {}).items():
        print(
            f"framework ceiling (Starlette+uvicorn on {loop}, one HMAC): "
            f"{ceiling['rps']:,.0f} rps, p99 {ceiling['p99_ms']:.2f} ms, "
            f"{ceiling['cpu_us_per_request']:.0f} us CPU per request"
        )
    rates = extra.get("inprocess") or {}
    for name, rate in rates.items():
        baseline = inprocess.REGISTRY[name].baseline if name in inprocess.REGISTRY else None
        versus = f" ({rate / rates[baseline]:.0%} of {baseline})" if baseline in rates else ""
        print(f"in-process {name}: {rate:,.0f} /s{versus}")
    print("\ntargets (issue 14)")
    for t in checks:
        print(f"  {'PASS' if t.passed else 'MISS'}  {t.name}: {t.measured} (wanted {t.wanted})")


def markdown(comparisons: Sequence[Comparison], checks: Sequence[Target]) -> str:
    """The same table for docs/performance.md."""
    lines = [
        "| scenario | database | stored | server | rps | p50 ms | p99 ms | CPU cores | CPU µs/req "
        "| errors | ratio |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in comparisons:
        ratios = c.ratios()
        for index, (name, s) in enumerate(c.summaries.items()):
            first = index == 0
            cells = [
                c.key if first else "",
                str(c.labels.get("database", "")) if first else "",
                _stored(c) if first else "",
                name,
                f"{s.rps:,.0f}",
                f"{s.p50_ms:.1f}",
                f"{s.p99_ms:.1f}",
                f"{s.cpu_cores:.2f}",
                f"{s.cpu_us_per_request:,.0f}",
                str(s.errors),
                f"**{ratios[name]:.2f}x**" if name in ratios else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| target | wanted | measured | |", "|---|---|---|---|"]
    lines += [
        f"| {t.name} | {t.wanted} | {t.measured} | {'PASS' if t.passed else 'MISS'} |"
        for t in checks
    ]
    return "\n".join(lines) + "\n"


def _stored(c: Comparison) -> str:
    value = c.labels.get("stored", "")
    return f"{value:,}" if isinstance(value, int) else str(value)
