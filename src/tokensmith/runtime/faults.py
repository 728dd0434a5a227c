"""Which failures mean that a system the server depends on is away, for the layers above.

The HTTP layer answers such a failure with 503 and ``Retry-After`` instead of a 500, and the
background jobs skip a round instead of logging a fault. Which exceptions those are is the
storage's business (``persistence/database.py``); web/ asks here and never imports SQLAlchemy.
Redis needs no entry: ``adapters/redis_limits.py`` falls back to this node's tables itself.
"""

from __future__ import annotations

from tokensmith.persistence.database import DATABASE_ERRORS, is_unavailable

__all__ = ["DATABASE_ERRORS", "is_unavailable"]
