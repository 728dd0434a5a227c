"""One access-log line per gateway request, in the server's JSON shape, carrying the outcome and
never the token or the query string."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from tests.gateway.conftest import Running
from tests.guard.conftest import Keys
from tests.guard.forge import claims, sign
from tokensmith.adapters.logs import JsonFormatter

ACCESS = "tokensmith.gateway.access"


def line_for(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, object]:
    """The formatted line of one request (written just after its answer: wait a little)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for record in caplog.records:
            if record.name == ACCESS and getattr(record, "request_id", None) == request_id:
                line: dict[str, object] = json.loads(JsonFormatter().format(record))
                return line
        time.sleep(0.01)
    raise AssertionError(f"no access line for {request_id}")


def send(running: Running, target: str, request_id: str, token: str | None) -> httpx.Response:
    headers = {"x-request-id": request_id}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.get(running.base_url + target, headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("target", "token_kind", "status", "route", "reason"),
    [
        ("/orders/42?q=secret-query", "good", 200, "/orders", "ok"),
        ("/orders/42?q=secret-query", "expired", 401, "/orders", "token_expired"),
        ("/orders/42", "none", 401, "/orders", "missing_credential"),
        ("/orders/admin/1", "good", 403, "/orders/admin", "insufficient_scope"),
        ("/orders/..;/admin", "good", 400, "-", "bad_path"),
        ("/elsewhere", "good", 404, "-", "no_route"),
        ("/down/x", "good", 502, "/down", "upstream_unavailable"),
        ("/healthz", "none", 200, "-", "local"),
    ],
)
def test_each_request_writes_one_line(
    running: Running,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
    target: str,
    token_kind: str,
    status: int,
    route: str,
    reason: str,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    token = {
        "good": sign(keys.es, claims()),
        "expired": sign(keys.es, claims(exp=1000)),
        "none": None,
    }[token_kind]
    request_id = f"log-test-{time.perf_counter_ns()}"
    if "..;" in target:  # httpx would resolve the dot segment before sending
        with httpx.Client(base_url=running.base_url) as client:
            request = client.build_request("GET", "/", headers={"x-request-id": request_id})
            request.url = request.url.copy_with(raw_path=target.encode())
            if token is not None:
                request.headers["authorization"] = f"Bearer {token}"
            response = client.send(request)
    else:
        response = send(running, target, request_id, token)
    assert response.status_code == status, response.text
    line = line_for(caplog, request_id)
    assert line["logger"] == ACCESS and line["msg"] == "request" and line["level"] == "info"
    assert {"ts", "request_id", "method", "path", "status", "duration_ms", "client"} <= set(line)
    assert line["method"] == "GET" and line["status"] == status
    assert line["route"] == route and line["reason"] == reason
    assert line["path"] == target.split("?")[0] and line["client"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float)
    text = json.dumps(line)
    assert "secret-query" not in text
    if token is not None:
        assert token not in text and token[-20:] not in text
    assert (
        sum(
            1
            for record in caplog.records
            if record.name == ACCESS and getattr(record, "request_id", None) == request_id
        )
        == 1
    )


def test_a_secret_in_the_path_is_not_written_to_the_log(
    running: Running, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that put its API key or a token in the path (never the place for it) does not
    also get it into the access log; the rest of the path stays."""
    caplog.set_level(logging.INFO, logger=ACCESS)
    token = sign(keys.es, claims())
    key = "tsk_live_" + "A" * 12 + "_" + "B" * 49
    for target in (f"/orders/{key}/x", f"/orders/{token}", "/elsewhere/tscs_" + "C" * 40):
        request_id = f"log-secret-{time.perf_counter_ns()}"
        send(running, target, request_id, token)
        line = json.dumps(line_for(caplog, request_id))
        for secret in (key, token, token.split(".")[1], "B" * 49, "C" * 40):
            assert secret not in line, line
        assert '"path": "/' in line and "redacted" in line
