"""Structured JSON logs, one object per line, each carrying the request id of its request."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from tokensmith.audit.trail import AuditLine
from tokensmith.core.fast_json import dumps_text

__all__ = ["ACCESS_LOG", "LineBuffer", "audit_line_writer", "configure_logging", "request_id_var"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


def _encode(entry: dict[str, Any]) -> str:
    # Compact, through orjson (core/fast_json.py); what JSON has no type for is logged as str().
    return dumps_text(entry, str)


# LogRecord's own attributes; anything else on a record came from ``extra=`` and is logged.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and message only: a traceback can carry request data.
            entry["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return _encode(entry)


@functools.lru_cache(maxsize=4)
def _second(whole: int) -> str:
    # Lines come in bursts within the same second: format it once.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def _timestamp(created: float) -> str:
    whole = int(created)
    return f"{_second(whole)}.{int((created - whole) * 1000):03d}Z"


class LineBuffer:
    """INFO lines of one logger, kept in memory and written in one go.

    A record through ``logging`` costs tens of microseconds (the record, the handler's lock, the
    formatter); a line here costs one ``dumps_text``. Lines are written when ``limit`` of them
    wait, when the server's batch task calls ``flush`` (every half second) and at shutdown, as
    nginx does with a buffered access log. Each line keeps the time it was added. Where logging
    is not set up by ``configure_logging`` (a host app's handlers, pytest's), each line goes
    through ``logging`` at once instead.
    """

    def __init__(self, name: str, *, limit: int = 512) -> None:
        self.name = name
        self._logger = logging.getLogger(name)
        self._limit = limit
        self._lines: list[str] = []

    def add(
        self,
        msg: str,
        fields: dict[str, Any],
        *,
        created: float | None = None,
        request_id: str | None = None,
    ) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        if _json_stream_handler() is None:
            self._logger.info(msg, extra=fields)
            return
        entry: dict[str, Any] = {
            "ts": _timestamp(time.time() if created is None else created),
            "level": "info",
            "logger": self.name,
            "msg": msg,
        }
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(fields)
        self._lines.append(_encode(entry))
        if len(self._lines) >= self._limit:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        handler = _json_stream_handler()
        if handler is None:  # logging was set up anew since: the lines still go somewhere
            sys.stderr.write(text)
            return
        with handler.lock or contextlib.nullcontext():
            handler.stream.write(text)
            handler.flush()


# The Envelope's one line per request.
ACCESS_LOG = LineBuffer("tokensmith.http")


def audit_line_writer(name: str = "tokensmith.audit") -> Callable[[list[AuditLine]], None]:
    """Writes a batch of audit events as JSON lines in one write, shaped like the formatter's."""
    buffer = LineBuffer(name)

    def write(lines: list[AuditLine]) -> None:
        for line in lines:
            buffer.add(
                line.event.event, line.fields(), created=line.created, request_id=line.request_id
            )
        buffer.flush()

    return write


def _json_stream_handler() -> logging.StreamHandler[Any] | None:
    handlers = logging.getLogger().handlers
    if (
        len(handlers) == 1
        and isinstance(handlers[0], logging.StreamHandler)
        and isinstance(handlers[0].formatter, JsonFormatter)
    ):
        return handlers[0]
    return None


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger(
        "uvicorn.access"
    ).disabled = True  # we log requests ourselves, without queries
    # httpx logs every request's full URL at INFO, and a webhook URL may carry a secret.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
