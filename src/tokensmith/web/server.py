"""How uvicorn runs the app: one set of options for ``tokensmith serve``, the gateway and the tests.

The HTTP protocol is ours (``web/connection.py``: header cap and read timeouts); TLS, when
configured, is TLS 1.2 or later with forward-secret AEAD ciphers only.

With ``--workers N`` each worker listens on a socket of its own (``SO_REUSEPORT``), and the kernel
spreads new connections across them. On one shared socket, whichever worker woke first accepted
every connection waiting, so a burst of keep-alive connections (a load balancer's pool, a
benchmark's 64) could all land on one worker while the other idled.
"""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from uvicorn import Config

from tokensmith.settings import Settings, load_settings
from tokensmith.web.connection import LimitedHttpToolsProtocol, ReadLimits, limited_protocol

__all__ = [
    "TLS_CIPHERS",
    "UVICORN_OPTIONS",
    "SettingsProtocol",
    "WorkerSocket",
    "read_limits",
    "server_options",
    "tls_context",
]

UVICORN_OPTIONS: dict[str, Any] = {
    "log_config": None,  # our JSON logging is configured before uvicorn starts
    "access_log": False,  # the envelope logs requests, without query strings
    "server_header": False,
    # Forwarding headers are read by core/forwarded.py, from declared proxies only. Uvicorn's own
    # reading trusts 127.0.0.1 by default, which lets any local caller pick its address.
    "proxy_headers": False,
    "ws": "none",  # nothing here speaks WebSocket
    "timeout_keep_alive": 5,
    "timeout_graceful_shutdown": 10,
    "limit_concurrency": 2048,
}
# TLS 1.2 suites: ECDHE key exchange (forward secrecy) and AEAD only; TLS 1.3 has only such.
TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def read_limits(settings: Settings) -> ReadLimits:
    return ReadLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout,
        body_idle_timeout=settings.body_idle_timeout,
        body_timeout=settings.body_timeout,
    )


@functools.cache
def _limits_from_environment() -> ReadLimits:
    return read_limits(load_settings())


class SettingsProtocol(LimitedHttpToolsProtocol):
    """For ``tokensmith serve``: worker processes import it by name (a class made at run time
    does not cross into a spawned worker) and take the limits from the TOKENSMITH_* settings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.limits = _limits_from_environment()  # type: ignore[misc]
        super().__init__(*args, **kwargs)


def tls_context(config: Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """Uvicorn's ``ssl_context_factory``: TLS 1.2+ with the certificate and key it was given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(
        str(config.ssl_certfile), str(config.ssl_keyfile or config.ssl_certfile)
    )
    return context


def server_options(
    limits: ReadLimits | None = None, tls: tuple[Path, Path] | None = None
) -> dict[str, Any]:
    """Uvicorn's options: ``limits`` for this process, or (None) each worker's own settings."""
    http: Any = limited_protocol(limits) if limits is not None else _qualified(SettingsProtocol)
    options = {**UVICORN_OPTIONS, "http": http}
    if tls is not None:
        cert, key = tls
        options |= {
            "ssl_certfile": str(cert),
            "ssl_keyfile": str(key),
            "ssl_context_factory": tls_context,
        }
    return options


class WorkerSocket(socket.socket):
    """The parent's socket under ``--workers N``: bound with ``SO_REUSEPORT``, never listening, so
    it holds the address but takes no connection. Uvicorn hands it to each worker process by
    pickling; it unpickles as a new socket bound to the same address, which the worker listens
    on: every worker has an accept queue of its own."""

    def __reduce__(self) -> tuple[Any, ...]:
        host, port = self.getsockname()[:2]
        return (reuse_port_socket, (self.family, host, port))


def reuse_port_socket(
    family: socket.AddressFamily, host: str, port: int, kind: type[socket.socket] = socket.socket
) -> socket.socket:
    sock = kind(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _qualified(kind: type) -> str:
    return f"{kind.__module__}:{kind.__qualname__}"
