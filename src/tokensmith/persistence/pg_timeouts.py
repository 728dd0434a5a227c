"""How long a PostgreSQL call may take, and what becomes of a connection whose call did not end.

One bound, ``TOKENSMITH_DATABASE_TIMEOUT``, for each wait on the database: connecting (asyncpg's
``timeout``), every call asyncpg makes (``command_timeout``: statements, and the BEGIN, COMMIT,
ROLLBACK and prepares that SQLAlchemy's adapter sends too), and a free connection from the pool
(the engine's ``pool_timeout``). All client side and free: no round trip is added. Server side,
set once at connect, ``statement_timeout`` ends a statement that outruns the client's bound (its
client may be gone), and ``idle_in_transaction_session_timeout`` ends a session left in a
transaction, so that its locks do not outlive a client lost in a partition.

A call that timed out, or whose task was cancelled (readiness), may still have its statement on
the wire or running. asyncpg would then send a cancel request on a second connection and keep
the first until the server acknowledged it: in a partition both wait, and the next call on
that connection, or SQLAlchemy's graceful close of it (two more seconds), waits with them.
``connection_class`` makes such a connection drop at once instead: it is closed, so the pool
and the driver path discard it, and its statement ends on the server by ``statement_timeout``.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["IDLE_IN_TRANSACTION", "QUERY_CANCELED", "asyncpg_connect_args", "connection_class"]

# Seconds a session may sit in an open transaction before the server ends it. The application
# never waits inside a transaction but for its own statements; this only frees what a lost
# client left, so it is generous.
IDLE_IN_TRANSACTION = 60
# SQLSTATE of a statement the server ended for its statement_timeout (or a cancel request).
QUERY_CANCELED = "57014"


def asyncpg_connect_args(
    timeout: float, schema: str | None, *, bound_statements: bool = True
) -> dict[str, Any]:
    """asyncpg's ``connect()`` arguments bounding every wait by ``timeout`` seconds; without
    ``bound_statements`` (migrations), only the connect and the idle transaction."""
    server_settings = {
        "statement_timeout": str(round(timeout * 1000) if bound_statements else 0),
        "idle_in_transaction_session_timeout": str(
            round(max(IDLE_IN_TRANSACTION, 2 * timeout) * 1000)
        ),
    }
    if schema is not None:
        server_settings["search_path"] = schema
    return {
        "timeout": timeout,
        "command_timeout": timeout if bound_statements else None,
        "server_settings": server_settings,
        "connection_class": connection_class(),
    }


@functools.cache
def connection_class() -> type[Any]:
    """asyncpg's Connection, dropped instead of cancelled (asyncpg is an extra: imported late)."""
    import asyncpg  # type: ignore[import-untyped]

    class DroppedOnTimeout(asyncpg.Connection):  # type: ignore[misc]
        # asyncpg calls this when a call timed out or its task was cancelled, to send a cancel
        # request and keep the connection; here, closed at once: nothing sent on it again.
        def _cancel_current_command(self, waiter: Any, cancel_waiter: Any = None) -> None:
            self._aborted = True  # is_closed() from now on, for the pool and the driver path
            self._transport.abort()  # what still waits on it fails as the connection is lost
            if not waiter.done():
                waiter.set_result(None)

    return DroppedOnTimeout
