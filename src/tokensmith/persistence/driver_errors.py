"""A driver's error as SQLAlchemy would have raised it, for the driver path (connections.py).

Callers catch SQLAlchemy's classes: ``IntegrityError`` for a duplicate (``is_duplicate`` reads
``str(exc.orig)``), ``OperationalError``/``InterfaceError`` or ``connection_invalidated`` for a
lost database (``database.is_unavailable``, hence the 503s). The driver path raises the same.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["as_sqlalchemy_error"]


def as_sqlalchemy_error(
    exc: BaseException, statement: str, parameters: Any, conn: Connection, *, many: bool = False
) -> sa.exc.StatementError:
    """``exc``, an error of the dialect's DBAPI raised on ``conn``'s connection, wrapped as
    SQLAlchemy wraps it: the class picked by the DBAPI error's own, the original kept as
    ``orig``, and ``connection_invalidated`` set when the dialect calls it a disconnect (the
    caller then invalidates ``conn``)."""
    dialect = conn.dialect
    disconnect = dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)  # type: ignore[arg-type]
    error = sa.exc.DBAPIError.instance(
        statement,
        parameters,
        exc,
        dialect.loaded_dbapi.Error,
        hide_parameters=conn.engine.hide_parameters,
        connection_invalidated=disconnect,
        dialect=dialect,
        ismulti=many,
    )
    assert isinstance(error, sa.exc.StatementError)  # what it makes of a DBAPI error
    return error
