"""JSON log lines: the formatter, and the audit trail's batched writer that mimics it."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

import pytest

from tokensmith.adapters.logs import JsonFormatter, LineBuffer, audit_line_writer
from tokensmith.audit.events import AuditEvent
from tokensmith.audit.trail import AuditLine

EVENT = AuditEvent(
    at=1_790_000_000,
    event="token.issued",
    outcome="success",
    client_id="c1",
    fingerprint="fp:abc",
    detail={"grant_type": "client_credentials"},
)


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@contextlib.contextmanager
def json_logging_only() -> Iterator[CountingStream]:
    """The root logger as configure_logging leaves it: one JSON handler, nothing else (pytest's
    own capturing handlers are put back afterwards)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    handler = logging.StreamHandler(CountingStream())
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield handler.stream
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def test_a_batch_is_one_write_of_lines_shaped_like_the_formatter() -> None:
    lines = [AuditLine(1_790_000_000.25, "req-12345678", EVENT), AuditLine(1.5, None, EVENT)]
    with json_logging_only() as stream:
        audit_line_writer()(lines)
        # The same event through logging and the formatter, for comparison.
        logging.getLogger("tokensmith.audit").info("token.issued", extra=lines[1].fields())
    assert stream.writes == 2  # the whole batch, then the one record
    first, second, _ = (json.loads(text) for text in stream.getvalue().splitlines())
    assert first == {
        "ts": "2026-09-21T14:13:20.250Z",
        "level": "info",
        "logger": "tokensmith.audit",
        "msg": "token.issued",
        "request_id": "req-12345678",
        "audit": True,
        "event": "token.issued",
        "at": 1_790_000_000,
        "outcome": "success",
        "client_id": "c1",
        "fingerprint": "fp:abc",
        "detail": {"grant_type": "client_credentials"},
    }
    assert "request_id" not in second and second["ts"] == "1970-01-01T00:00:01.500Z"
    # Through logging and the formatter the event reads the same, but for the timestamp.
    formatted = json.loads(stream.getvalue().splitlines()[-1])
    assert formatted.keys() == second.keys()
    assert {k: v for k, v in formatted.items() if k != "ts"} == {
        k: v for k, v in second.items() if k != "ts"
    }


def test_nothing_is_written_when_the_audit_logger_is_quiet() -> None:
    logging.getLogger("tokensmith.audit").setLevel(logging.WARNING)
    try:
        with json_logging_only() as stream:
            audit_line_writer()([AuditLine(0.0, None, EVENT)])
    finally:
        logging.getLogger("tokensmith.audit").setLevel(logging.NOTSET)
    assert stream.getvalue() == ""


def test_other_logging_set_ups_get_one_record_per_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tokensmith.audit")
    audit_line_writer()([AuditLine(0.0, None, EVENT), AuditLine(0.0, None, EVENT)])
    records = [r for r in caplog.records if r.name == "tokensmith.audit"]
    assert [r.getMessage() for r in records] == ["token.issued", "token.issued"]
    assert records[0].__dict__["fingerprint"] == "fp:abc"


def test_buffered_lines_wait_for_a_flush_or_a_full_buffer() -> None:
    with json_logging_only() as stream:
        buffer = LineBuffer("tokensmith.http", limit=3)
        buffer.add("request", {"status": 200}, request_id="req-00000001")
        buffer.add("request", {"status": 404})
        assert stream.writes == 0
        buffer.flush()
        assert stream.writes == 1
        for status in (201, 202, 203):  # the third fills the buffer
            buffer.add("request", {"status": status})
        assert stream.writes == 2
        buffer.flush()  # nothing left: no empty write
        assert stream.writes == 2
    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert [line["status"] for line in lines] == [200, 404, 201, 202, 203]
    assert lines[0]["request_id"] == "req-00000001" and "request_id" not in lines[1]
    assert {line["logger"] for line in lines} == {"tokensmith.http"}


def test_buffered_lines_go_through_logging_when_it_is_not_ours(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tokensmith.http")
    LineBuffer("tokensmith.http").add("request", {"status": 200})
    assert [r.__dict__.get("status") for r in caplog.records] == [200]  # at once, unbuffered
