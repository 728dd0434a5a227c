"""Pure arithmetic on benchmark rounds: medians, ratios and the issue's targets (no I/O)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = ["MARKER", "Round", "Summary", "Target", "parse_wrk", "ratio", "summarise"]

MARKER = "BENCHJSON "  # the line our wrk script prints in done()


@dataclass(frozen=True, slots=True)
class Round:
    """One wrk run against one server."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_cores: float  # server CPU seconds per wall second, all its processes together
    busiest: float = 1.0  # the busiest process's share of that CPU (0.5 = two evenly loaded)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Summary:
    """Medians over rounds; errors are summed (the issue wants them all at zero)."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_cores: float
    errors: int
    rounds: int
    busiest: float = 1.0

    @property
    def cpu_us_per_request(self) -> float:
        """Server CPU per request: steadier than requests per second on a shared machine."""
        return self.cpu_cores / self.rps * 1e6 if self.rps > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "cpu_us_per_request": round(self.cpu_us_per_request)}


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    wanted: str
    measured: str
    passed: bool


def parse_wrk(stdout: str, cpu_cores: float = 0.0) -> Round:
    """Read the JSON line our Lua ``done`` hook prints; raise ValueError if it is missing."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            errors = data["errors"]
            return Round(
                requests=int(data["requests"]),
                seconds=int(data["duration_us"]) / 1e6,
                errors=sum(
                    int(errors[k]) for k in ("connect", "read", "write", "status", "timeout")
                ),
                p50_ms=int(data["p50_us"]) / 1000,
                p99_ms=int(data["p99_us"]) / 1000,
                cpu_cores=cpu_cores,
            )
    raise ValueError("wrk printed no result line; is the Lua script ours?")


def summarise(rounds: Sequence[Round]) -> Summary:
    if not rounds:
        raise ValueError("no rounds to summarise")
    return Summary(
        rps=statistics.median(r.rps for r in rounds),
        p50_ms=statistics.median(r.p50_ms for r in rounds),
        p99_ms=statistics.median(r.p99_ms for r in rounds),
        cpu_cores=statistics.median(r.cpu_cores for r in rounds),
        errors=sum(r.errors for r in rounds),
        rounds=len(rounds),
        busiest=max(r.busiest for r in rounds),
    )


def ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs > 0 else float("inf")
