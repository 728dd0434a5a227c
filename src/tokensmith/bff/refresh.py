"""Silent refresh: a fresh access token for a session, one refresh at a time per session.

Shortly before the access token expires (``refresh_before``), or when an upstream refused it
(``invalid_token``), the session's lock is taken and the record read again: the request that
waited behind another finds the new token and uses it, so several tabs, requests or BFF nodes
(Redis store) present one refresh token once and never trip reuse detection (RFC 9700 §4.14).
The new refresh token is stored before the new access token is used. ``invalid_grant`` ends the
session: the record is deleted and the browser is told to sign in again. An issuer that cannot be
reached leaves the session as it is, and a token that is still valid keeps working.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from tokensmith.bff.oauth import IssuerClient, IssuerError, IssuerUnavailable
from tokensmith.bff.sessions import SessionRecord, Sessions
from tokensmith.core.clock import Clock
from tokensmith.core.secrets import fingerprint

__all__ = ["LoginRequired", "Refresher"]

log = logging.getLogger("tokensmith.bff")


class LoginRequired(Exception):
    """The session is gone (ended, or its refresh token refused): the person signs in again."""


class Refresher:
    def __init__(
        self, sessions: Sessions, issuer: IssuerClient, clock: Clock, refresh_before: int
    ) -> None:
        self.sessions = sessions
        self.issuer = issuer
        self.clock = clock
        self.refresh_before = refresh_before

    def fresh_enough(self, record: SessionRecord) -> bool:
        return record.access_expires_at - self.refresh_before > self.clock.now()

    async def fresh(
        self, key: bytes, record: SessionRecord, rejected: str | None = None
    ) -> SessionRecord:
        """``record`` with an access token to use; ``rejected``: the token an upstream refused."""
        if rejected is None and self.fresh_enough(record):
            return record
        async with self.sessions.lock(key):
            current = await self.sessions.load(key)  # another holder may have refreshed
            if current is None:
                raise LoginRequired
            if rejected is None and self.fresh_enough(current):
                return current
            if rejected is not None and current.access_token != rejected:
                return current
            return await self._refresh(key, current, still_usable=rejected is None)

    async def _refresh(
        self, key: bytes, record: SessionRecord, still_usable: bool
    ) -> SessionRecord:
        if record.refresh_token is None:
            if still_usable and record.access_expires_at > self.clock.now():
                return record
            await self.sessions.end(key)
            raise LoginRequired
        try:
            tokens = await self.issuer.refresh(record.refresh_token)
        except IssuerError as exc:
            if exc.error != "invalid_grant":
                if still_usable and record.access_expires_at > self.clock.now():
                    return record  # the issuer is away: the token we hold still works
                raise IssuerUnavailable(exc.description) from None
            log.info(
                "refresh refused; the session ends",
                extra={"error": exc.error, "token": fingerprint(record.refresh_token)},
            )
            await self.sessions.end(key)
            raise LoginRequired from None
        renewed = replace(
            record,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token or record.refresh_token,
            access_expires_at=self.clock.now() + tokens.expires_in,
        )
        await self.sessions.save(key, renewed)  # stored before the new token is used
        return renewed
