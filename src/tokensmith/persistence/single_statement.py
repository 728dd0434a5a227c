"""The one rule of ``Connections.single()``: one statement, since it may run without a transaction.

A lone statement is atomic by itself, which is what lets PostgreSQL's ``single()`` skip BEGIN
and COMMIT; a second one would be committed apart from the first. So it is refused before it
is sent, on every database alike, and a test of the block on SQLite finds the mistake too.
"""

from __future__ import annotations

__all__ = ["ANY", "ONE", "SecondStatement", "counted"]

ANY = -1  # the budget of begin() and connect(): no limit
ONE = 1  # the budget of single()


class SecondStatement(RuntimeError):
    """A ``single()`` block sent a second statement: it needs ``begin()``."""


def counted(left: int) -> int:
    """What is left of a block's budget after one more statement; raises if nothing was."""
    if left == 0:
        raise SecondStatement("single() holds one statement: a block of more needs begin()")
    return left - 1 if left > 0 else left
