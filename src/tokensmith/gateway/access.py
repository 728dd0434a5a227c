"""The gateway's access log: one JSON line per request, shaped like the server's.

Fields: ``request_id``, ``method``, ``path``, ``route`` (the matched prefix, or ``-``), ``status``,
``duration_ms``, ``client`` and ``reason`` (``ok``, or why it was refused or failed: the metric's
reason). Never the query string (it may carry a credential, SECURITY.md case 15) and never a
header: the token cannot reach this line.

The record goes through ``logging`` (logger ``tokensmith.gateway.access``, message ``request``);
``tokensmith gateway`` installs the server's ``JsonFormatter``, so the line is the server's
``{"ts", "level", "logger", "msg", "request_id", ...}``. The server's buffered ``ACCESS_LOG`` is
not reused: ``adapters.logs`` imports the audit trail, which the gateway's import contract keeps
out, and its buffer needs the server's flush task, which the gateway does not run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from tokensmith.core.secrets import redact_secrets

__all__ = ["Exchange"]

log = logging.getLogger("tokensmith.gateway.access")

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


@dataclass(slots=True)
class Exchange:
    """What the log line says about one request, filled in as the request goes."""

    request_id: str
    method: str
    path: str
    client: str
    route: str = "-"
    status: int = 500  # until a response starts: what the ASGI server sends after a crash
    reason: str = "ok"
    started: float = field(default_factory=time.perf_counter)

    def recording(self, send: Send) -> Send:
        """``send``, noting the status of the response that goes out."""

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = int(message["status"])
            await send(message)

        return send_and_note

    def write(self) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        log.info(
            "request",
            extra={
                "request_id": self.request_id,
                "method": self.method,
                # Never the query string, and no secret a client put in the path.
                "path": redact_secrets(self.path),
                "route": self.route,
                "status": self.status,
                "duration_ms": round((time.perf_counter() - self.started) * 1000, 3),
                "client": self.client,
                "reason": self.reason,
            },
        )
