"""One transaction for a grant's writes, whichever stores make them (the unit of work).

A store method handed a ``Transaction`` does not write: it adds its write, or a guard, to the
transaction, and nothing reaches the database until the grant commits it. Then every write is
stored, or none is: a failing write, or a guard that does not hold, leaves no partial state
(SECURITY.md cases 54, 64). Only the commit talks to the database, so a grant's writes cost one
round of statements and one commit, and nothing is held open while the grant signs its tokens.

A guard is a condition checked last, inside the transaction; a store that offers one says what
it holds against (``CodeStore.guard_issue``). ``RefreshStore.rotate`` commits a transaction too,
in the one that claims the refresh token.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Transaction"]


class Transaction(Protocol):
    async def commit(self) -> bool:
        """Store every write added, in one database transaction; False, with nothing stored, if
        a guard did not hold. A write that fails raises, with nothing stored."""
        ...
