"""What a statement's result offers repositories, whichever path ran it (connections.py).

SQLAlchemy's ``CursorResult`` fits ``Result``; ``Rows`` is the driver path's: the rows fetched
in full (hot statements read a row or a handful), as SQLAlchemy ``Row`` objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import sqlalchemy as sa

__all__ = ["Result", "Rows", "Scalars"]


class Scalars(Protocol):
    def __iter__(self) -> Iterator[Any]: ...

    def all(self) -> Sequence[Any]: ...

    def first(self) -> Any: ...

    def one(self) -> Any: ...


class Result(Protocol):
    @property
    def rowcount(self) -> int: ...

    def __iter__(self) -> Iterator[sa.Row[Any]]: ...

    def all(self) -> Sequence[sa.Row[Any]]: ...

    def first(self) -> sa.Row[Any] | None: ...

    def one(self) -> sa.Row[Any]: ...

    def one_or_none(self) -> sa.Row[Any] | None: ...

    def scalar(self) -> Any: ...

    def scalar_one(self) -> Any: ...

    def scalar_one_or_none(self) -> Any: ...

    def scalars(self) -> Scalars: ...


def _only(items: Sequence[Any], *, required: bool) -> Any:
    # SQLAlchemy's exceptions and messages, so callers see no difference.
    if len(items) > 1:
        raise sa.exc.MultipleResultsFound(
            "Multiple rows were found when exactly one was required"
            if required
            else "Multiple rows were found when one or none was required"
        )
    if not items:
        if required:
            raise sa.exc.NoResultFound("No row was found when one was required")
        return None
    return items[0]


class Rows:
    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[sa.Row[Any]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[sa.Row[Any]]:
        return iter(self._rows)

    def all(self) -> list[sa.Row[Any]]:
        return list(self._rows)

    def first(self) -> sa.Row[Any] | None:
        return self._rows[0] if self._rows else None

    def one(self) -> sa.Row[Any]:
        row: sa.Row[Any] = _only(self._rows, required=True)
        return row

    def one_or_none(self) -> sa.Row[Any] | None:
        row: sa.Row[Any] | None = _only(self._rows, required=False)
        return row

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> _ScalarList:
        return _ScalarList([row[0] for row in self._rows])


class _ScalarList:
    __slots__ = ("_values",)

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def all(self) -> list[Any]:
        return list(self._values)

    def first(self) -> Any:
        return self._values[0] if self._values else None

    def one(self) -> Any:
        return _only(self._values, required=True)
