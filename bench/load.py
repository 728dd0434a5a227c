"""The load generator: wrk with a generated Lua script, one thread, a fixed number of connections.

A request is either fixed (method, path, headers, body) or drawn from a file of values, one per
request, for single-use credentials (authorization codes, refresh tokens). Our ``done`` hook prints
one JSON line that ``stats.parse_wrk`` reads.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import Group
from bench.stats import MARKER, Round, parse_wrk

__all__ = ["Request", "run_wrk"]


@dataclass(frozen=True, slots=True)
class Request:
    path: str
    body: str  # form-encoded; "{value}" is replaced by the next line of ``values_file``
    headers: Mapping[str, str] = field(default_factory=dict)
    values_file: Path | None = None
    method: str = "POST"


_DONE = (
    """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('%s{"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,'
    .. '"write":%d,"status":%d,"timeout":%d},"p50_us":%d,"p99_us":%d}\\n', '"""
    + MARKER
    + """',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
)


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for ASCII


def lua_script(request: Request) -> str:
    form = {"Content-Type": "application/x-www-form-urlencoded"} if request.body else {}
    headers = {**form, **request.headers}
    table = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
    lines = [f"local headers = {{{table}}}", f"local path = {_lua_string(request.path)}"]
    if request.values_file is None:
        lines += [
            f"wrk.method = {_lua_string(request.method)}",
            "wrk.path = path",
            f"wrk.body = {_lua_string(request.body)}",
            "wrk.headers = headers",
        ]
    else:
        before, _, after = request.body.partition("{value}")
        lines += [
            "local values, i = {}, 0",
            f"for line in io.lines({_lua_string(str(request.values_file))}) do",
            "  values[#values + 1] = line",
            "end",
            "function request()",
            "  i = i + 1",
            "  local v = values[i] or values[#values]  -- past the end: a used value, an error",
            f"  local body = {_lua_string(before)} .. v .. {_lua_string(after)}",
            f"  return wrk.format({_lua_string(request.method)}, path, headers, body)",
            "end",
        ]
    return "\n".join(lines) + "\n" + _DONE


def run_wrk(
    base_url: str,
    request: Request,
    *,
    seconds: float,
    connections: int,
    script: Path,
    server: Group,
    wrk: str = "wrk",
) -> Round:
    """Load ``server`` for ``seconds``; its CPU is measured over exactly that run."""
    script.write_text(lua_script(request))
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", "-s", str(script)]
    cpu_before = server.cpu()
    completed = subprocess.run(
        [*argv, base_url], capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    cpu_after = server.cpu()
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    result = parse_wrk(completed.stdout)
    used = {pid: after - cpu_before.get(pid, 0.0) for pid, after in cpu_after.items()}
    total = sum(used.values())
    cores = total / result.seconds if result.seconds > 0 else 0.0
    busiest = max(used.values()) / total if total > 0 else 1.0
    return Round(
        result.requests, result.seconds, result.errors, result.p50_ms, result.p99_ms, cores, busiest
    )
