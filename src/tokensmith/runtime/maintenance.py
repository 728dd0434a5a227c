"""The background jobs of a serving process, started together by ``start_background``.

- every ``TOKENSMITH_KEYS_REFRESH_INTERVAL``: pick up key rotations made elsewhere, retire expired
  keys, rotate on schedule, erase refresh-token successors whose grace window has closed, and
  delete, in bounded batches, the records that can no longer matter (``persistence/purge.py``);
- every half second: write what the request path batches in memory (access-log lines, audit
  events, API-key last-used times);
- webhook delivery and the automatic responses to anomalies, each waiting for its queue;
- the other nodes' lock events, mirrored into this node's lockout table (``Limits.listen``).

A database outage skips a round with a warning; the next round tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from tokensmith.adapters.logs import ACCESS_LOG
from tokensmith.oauth.clients import MAX_REFRESH_GRACE
from tokensmith.persistence.database import DATABASE_ERRORS
from tokensmith.persistence.purge import Retention, purge
from tokensmith.runtime.services import Services

__all__ = ["flush_batches", "maintain_keys", "start_background"]

log = logging.getLogger(__name__)


def start_background(services: Services, *, each_round: Callable[[], None] | None = None) -> None:
    """Start every background job as a task in ``services.tasks`` (``Services.stop_tasks`` ends
    them). ``each_round`` runs before each maintenance round (the web layer's key gauge)."""
    services.tasks.append(asyncio.create_task(maintain_keys(services, each_round)))
    services.tasks.append(asyncio.create_task(flush_batches(services)))
    services.tasks.append(asyncio.create_task(services.webhooks.run()))
    services.tasks.append(asyncio.create_task(services.responder.run()))
    services.tasks.append(asyncio.create_task(services.limits.listen()))


async def maintain_keys(services: Services, each_round: Callable[[], None] | None = None) -> None:
    """Every node: pick up rotations made elsewhere, retire expired keys, rotate on schedule,
    and delete, in bounded batches, the records that can no longer matter (persistence/purge.py).
    """
    settings = services.settings
    while True:
        if each_round is not None:
            each_round()
        await asyncio.sleep(settings.keys_refresh_interval)
        try:
            await services.keyring.maintain(settings.key_rotation_period)
            await services.refresh.forget_successors(services.clock.now() - MAX_REFRESH_GRACE)
            await _purge(services)
        except DATABASE_ERRORS as exc:
            log.warning(
                "key maintenance skipped: database unavailable", extra={"error": type(exc).__name__}
            )
        except Exception:
            log.exception("key maintenance failed")


async def _purge(services: Services) -> None:
    settings = services.settings
    # Kept a while past expiry (the longest an access token lives), so a late replay is still
    # recognised as one and a revoked JWT's record outlives the JWT.
    retention = Retention(
        margin=settings.token_max_lifetime,
        family_max_lifetime=settings.refresh_family_max_lifetime,
        audit_retention=settings.audit_retention,
    )
    deleted = await purge(services, services.clock.now(), retention)
    if any(deleted.values()):
        log.info("expired records purged", extra={"purged": deleted})


async def flush_batches(services: Services, interval: float = 0.5) -> None:
    """Write what the request path batches in memory: access-log lines, audit events, API-key
    last-used times."""
    while True:
        await asyncio.sleep(interval)
        ACCESS_LOG.flush()
        try:
            await services.trail.flush()
            await services.key_verifier.flush_last_used()
        except DATABASE_ERRORS as exc:
            log.warning("batched records not stored yet", extra={"error": type(exc).__name__})
        except Exception:
            log.exception("storing batched records failed")
