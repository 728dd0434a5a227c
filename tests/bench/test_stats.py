"""The bench's pure helpers: reading wrk's result line, medians, ratios and the targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import Request, lua_script
from bench.report import PEER, TOKENSMITH, Comparison, targets
from bench.stats import MARKER, Round, Summary, parse_wrk, ratio, summarise

WRK_OUTPUT = f"""Running 5s test @ http://127.0.0.1:8000
  1 threads and 64 connections
{MARKER}{{"requests":20000,"duration_us":5000000,"errors":{{"connect":0,"read":1,"write":0,"status":2,"timeout":0}},"p50_us":3100,"p99_us":12500}}
"""


def test_parse_wrk_reads_our_line() -> None:
    result = parse_wrk(WRK_OUTPUT, cpu_cores=0.9)
    assert result.rps == 4000
    assert result.errors == 3
    assert (result.p50_ms, result.p99_ms, result.cpu_cores) == (3.1, 12.5, 0.9)


def test_parse_wrk_without_our_line_fails() -> None:
    with pytest.raises(ValueError, match="no result line"):
        parse_wrk("Running 5s test\n")


def test_summarise_takes_medians_and_sums_errors() -> None:
    rounds = [
        Round(1000, 1.0, 0, 1.0, 9.0, 0.8),
        Round(3000, 1.0, 1, 3.0, 5.0, 1.0),
        Round(2000, 1.0, 0, 2.0, 7.0, 0.9),
    ]
    summary = summarise(rounds)
    assert (summary.rps, summary.p50_ms, summary.p99_ms, summary.cpu_cores) == (2000, 2, 7, 0.9)
    assert (summary.errors, summary.rounds) == (1, 3)
    with pytest.raises(ValueError, match="no rounds"):
        summarise([])


def test_ratio_of_nothing_is_infinite() -> None:
    assert ratio(10, 4) == 2.5
    assert ratio(10, 0) == float("inf")


def test_lua_for_fixed_and_single_use_requests(tmp_path: Path) -> None:
    fixed = lua_script(Request("/token", "grant_type=client_credentials", {"Authorization": "B x"}))
    assert 'wrk.body = "grant_type=client_credentials"' in fixed
    assert '["Authorization"] = "B x"' in fixed
    assert "function done" in fixed
    values = tmp_path / "codes.txt"
    pooled = lua_script(Request("/token", "code={value}&x=1", values_file=values))
    assert f'io.lines("{values}")' in pooled
    assert '"code=" .. v .. "&x=1"' in pooled


def _summary(rps: float, p99: float, errors: int = 0) -> Summary:
    return Summary(rps, 1.0, p99, 1.0, errors, 3)


def _comparison(key: str, ours: Summary, theirs: Summary, **labels: object) -> Comparison:
    return Comparison(key, key, dict(labels), {TOKENSMITH: ours, PEER: theirs}, {})


def test_targets_pass_and_miss() -> None:
    main = {"database": "sqlite", "stored": 1000}
    comparisons = [
        _comparison("cc_jwt", _summary(8000, 10), _summary(3000, 20), **main),
        _comparison("introspect", _summary(5000, 10), _summary(4000, 20), **main),
    ]
    sizes = {TOKENSMITH: _summary(5000, 10), "tokensmith (10^6)": _summary(4000, 10)}
    sizes |= {PEER: _summary(4000, 20), "node-oidc-provider (10^6)": _summary(4000, 20)}
    labels = {"database": "sqlite", "stored": "10^3 vs 10^6"}
    comparisons.append(Comparison("introspect", "", labels, sizes, {}))
    found = {t.name: t for t in targets(comparisons)}
    assert found["token endpoint (cc, ES256 JWT) vs node-oidc-provider"].passed
    assert not found["introspection vs node-oidc-provider"].passed
    lost = found["introspect on sqlite, 10^3 vs 10^6 stored tokens"]
    assert not lost.passed
    assert lost.measured.startswith("+20.0% rps lost")
    assert found["errors in every run"].passed
