"""The comparison table and the issue's targets, printed and as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench import inprocess
from bench.stats import Summary, Target, ratio

__all__ = ["Comparison", "print_report", "targets"]

TOKENSMITH = "tokensmith"
PEER = "node-oidc-provider"


@dataclass(frozen=True, slots=True)
class Comparison:
    key: str
    title: str
    labels: dict[str, Any]
    summaries: dict[str, Summary]  # by server name; Tokensmith first
    round_rps: dict[str, list[float]]

    @property
    def ratio(self) -> float:
        return ratio(self.summaries[TOKENSMITH].rps, self.summaries[PEER].rps)

    def line(self) -> str:
        where = " ".join(f"{k}={v}" for k, v in self.labels.items())
        parts = [f"{n} {s.rps:,.0f} rps p99 {s.p99_ms:.1f} ms" for n, s in self.summaries.items()]
        return f"{self.key} [{where}]: " + " | ".join(parts) + f" -> ratio {self.ratio:.2f}x"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.key,
            "title": self.title,
            **self.labels,
            "ratio": round(self.ratio, 3),
            "servers": {
                name: {**s.as_dict(), "round_rps": [round(x) for x in self.round_rps[name]]}
                for name, s in self.summaries.items()
            },
        }


def _find(comparisons: Sequence[Comparison], key: str, **labels: Any) -> Comparison | None:
    for c in comparisons:
        if c.key == key and all(c.labels.get(k) == v for k, v in labels.items()):
            return c
    return None


def targets(comparisons: Sequence[Comparison]) -> list[Target]:
    found: list[Target] = []
    main = {"database": "sqlite", "stored": 1_000}
    token = _find(comparisons, "cc_jwt", **main)
    if token is not None:
        ours, theirs = token.summaries[TOKENSMITH], token.summaries[PEER]
        found.append(
            Target(
                "token endpoint (cc, ES256 JWT) vs node-oidc-provider",
                ">= 2.0x rps and lower p99",
                f"{token.ratio:.2f}x, p99 {ours.p99_ms:.1f} vs {theirs.p99_ms:.1f} ms",
                token.ratio >= 2.0 and ours.p99_ms < theirs.p99_ms,
            )
        )
    for c in comparisons:
        if c.key != "cc_jwt" or "workers" not in c.labels:
            continue
        names = [n for n in c.summaries if n.endswith("w)")]  # the other worker count
        if len(names) == 2:
            ours, theirs = c.summaries[names[0]], c.summaries[names[1]]
            two = ratio(ours.rps, theirs.rps)
            found.append(
                Target(
                    f"token endpoint, {names[0]} vs {names[1]}",
                    ">= 2.0x rps and lower p99",
                    f"{two:.2f}x, p99 {ours.p99_ms:.1f} vs {theirs.p99_ms:.1f} ms",
                    two >= 2.0 and ours.p99_ms < theirs.p99_ms,
                )
            )
    intro = _find(comparisons, "introspect", **main)
    if intro is not None:
        found.append(
            Target(
                "introspection vs node-oidc-provider",
                ">= 2.0x rps",
                f"{intro.ratio:.2f}x",
                intro.ratio >= 2.0,
            )
        )
    for c in comparisons:
        names = list(c.summaries)
        if c.key not in ("cc_opaque", "introspect") or " vs " not in str(c.labels.get("stored")):
            continue
        small, big = c.summaries[names[0]], c.summaries[names[1]]
        kept = ratio(big.rps, small.rps)
        cost = ratio(big.cpu_us_per_request, small.cpu_us_per_request)
        found.append(
            Target(
                f"{c.key} on {c.labels['database']}, {c.labels['stored']} stored tokens",
                "<= 10% lost",
                f"{(1 - kept) * 100:+.1f}% rps lost (CPU per request {(cost - 1) * 100:+.1f}%)",
                kept >= 0.9,
            )
        )
    errors = sum(s.errors for c in comparisons for s in c.summaries.values())
    found.append(Target("errors in every run", "0", str(errors), errors == 0))
    return found


def print_report(
    comparisons: Sequence[Comparison], checks: Sequence[Target], extra: dict[str, Any]
) -> None:
    header = (
        f"{'scenario':<11} {'db':<10} {'stored':>19} {'server':<30} {'rps':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'CPU':>5} {'us/req':>6} {'top':>4} {'err':>4} {'ratio':>6}"
    )
    print()
    print(header)
    print("-" * len(header))
    for c in comparisons:
        stored = _stored(c)
        for index, (name, s) in enumerate(c.summaries.items()):
            first = index == 0
            print(
                f"{c.key if first else '':<11} {c.labels.get('database', '') if first else '':<10} "
                f"{stored if first else '':>19} {name:<30} {s.rps:>8,.0f} {s.p50_ms:>7.2f} "
                f"{s.p99_ms:>7.2f} {s.cpu_cores:>5.2f} {s.cpu_us_per_request:>6.0f} "
                f"{s.busiest * 100:>3.0f}% {s.errors:>4} "
                f"{(f'{c.ratio:.2f}x' if first else ''):>6}"
            )
    print("CPU: server cores used; us/req: server CPU per request; top: busiest process's share")
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
    print("\ntargets")
    for t in checks:
        print(f"  {'PASS' if t.passed else 'MISS'}  {t.name}: {t.measured} (wanted {t.wanted})")
    for label, target, ok in _extra_targets(extra):
        print(f"  {'PASS' if ok else 'MISS'}  {label} (wanted {target})")


def _extra_targets(extra: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The targets read from the in-process, API-key and audit figures."""
    found: list[tuple[str, str, bool]] = []
    rates = extra.get("inprocess") or {}
    for alg in ("es256", "rs256", "eddsa"):
        name = f"guard_first_sight_{alg}"
        bench = inprocess.REGISTRY.get(name)
        mine = rates.get(name)
        raw = rates.get(bench.baseline or "") if bench is not None else None
        if mine and raw:
            share = mine / raw
            found.append((f"guard first sight {alg}: {share:.0%} of raw", ">= 85%", share >= 0.85))
    cached = rates.get("guard_cached_es256")
    if cached:
        found.append((f"guard cached: {cached:,.0f}/s", ">= 200,000/s", cached >= 200_000))
    http = extra.get("api_key_http")
    if http:
        share = http["ratio"]
        found.append((f"API keys over HTTP: {share:.0%} of the ceiling", ">= 80%", share >= 0.8))
    audit = extra.get("audit_overhead")
    if audit:
        lost = audit["lost"]
        found.append((f"audit trail, token endpoint: {lost:+.1%} rps", "<= 10% lost", lost <= 0.1))
    return found


def markdown(comparisons: Sequence[Comparison], checks: Sequence[Target]) -> str:
    """The same table for docs/performance.md."""
    lines = [
        "| scenario | database | stored | server | rps | p50 ms | p99 ms | CPU cores | CPU µs/req "
        "| errors | ratio |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in comparisons:
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
                f"**{c.ratio:.2f}x**" if first else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| target | wanted | measured | |", "|---|---|---|---|"]
    lines += [
        f"| {t.name} | {t.wanted} | {t.measured} | {'PASS' if t.passed else 'MISS'} |"
        for t in checks
    ]
    return "\n".join(lines) + "\n"


def _stored(c: Comparison) -> str:
    if "workers" in c.labels:
        return f"workers {c.labels['workers']}"
    value = c.labels.get("stored", "")
    return f"{value:,}" if isinstance(value, int) else str(value)
