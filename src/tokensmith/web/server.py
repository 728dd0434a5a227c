"""How uvicorn runs the app: one set of options for ``tokensmith serve`` and the tests."""

from __future__ import annotations

from typing import Any

__all__ = ["UVICORN_OPTIONS"]

UVICORN_OPTIONS: dict[str, Any] = {
    "log_config": None,  # our JSON logging is configured before uvicorn starts
    "access_log": False,  # the envelope logs requests, without query strings
    "server_header": False,
    "timeout_keep_alive": 5,
    "timeout_graceful_shutdown": 10,
    "h11_max_incomplete_event_size": 16 * 1024,  # request line + headers; larger gets 400
    "limit_concurrency": 2048,
}
