"""Which failures mean "the database is away, retry shortly" (runtime/faults.py), without one."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tokensmith.runtime.faults import is_unavailable
from tokensmith.web.envelope import classify


def dbapi_error(invalidated: bool) -> sa.exc.DBAPIError:
    return sa.exc.DBAPIError(
        "SELECT 1", None, Exception("gone"), connection_invalidated=invalidated
    )


@pytest.mark.parametrize(
    ("exc", "away"),
    [
        (sa.exc.OperationalError("SELECT 1", None, Exception("refused")), True),
        (sa.exc.InterfaceError("SELECT 1", None, Exception("closed")), True),
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (dbapi_error(invalidated=True), True),
        (dbapi_error(invalidated=False), False),  # the database answered: a fault of its own
        (sa.exc.IntegrityError("INSERT", None, Exception("duplicate")), False),
        (ValueError("a bug"), False),
    ],
)
def test_what_counts_as_the_database_being_away(exc: Exception, away: bool) -> None:
    assert is_unavailable(exc) is away
    assert classify(exc).status == (503 if away else 500)
