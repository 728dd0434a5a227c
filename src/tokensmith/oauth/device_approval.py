"""The person's side of the device grant: the code they typed, and their decision (RFC 8628 §3.3).

``find`` turns what was typed into the pending grant it names, or None: malformed, unknown,
expired and already decided all look the same, and the web page counts each as a failed attempt
(``web/device.py``), so guessing codes is bounded by the lockout of code entry. ``decide`` is
the one write: a pending grant becomes approved or denied once (§5.4: only after the person
confirmed it, never on arrival from a ``verification_uri_complete`` link).
"""

from __future__ import annotations

from dataclasses import dataclass

from tokensmith.accounts.sessions import Session
from tokensmith.audit.events import AuditEvent, AuditSink, Outcome
from tokensmith.core.clock import Clock
from tokensmith.core.secrets import keyed_hash
from tokensmith.oauth.clients import Client, ClientStore
from tokensmith.oauth.device_grants import DeviceDecision, DeviceGrant, DeviceGrantStore
from tokensmith.oauth.user_codes import normalise_user_code, user_code_fingerprint

__all__ = ["DeviceApproval", "Found"]


@dataclass(frozen=True, slots=True)
class Found:
    """A pending grant, and the client it is for (whose name and scopes the page shows)."""

    grant: DeviceGrant
    client: Client


class DeviceApproval:
    def __init__(
        self,
        *,
        grants: DeviceGrantStore,
        clients: ClientStore,
        pepper: bytes,
        clock: Clock,
        audit: AuditSink,
    ) -> None:
        self._grants = grants
        self._clients = clients
        self._pepper = pepper
        self._clock = clock
        self._audit = audit

    async def find(self, typed: str, session: Session) -> Found | None:
        """The pending, live grant of the typed code, audited either way (as a fingerprint)."""
        code = normalise_user_code(typed)
        found = await self._pending(keyed_hash(self._pepper, code)) if code else None
        self._record(
            "device.code_entered",
            "success" if found else "failure",
            session,
            found.client.client_id if found else None,
            {"user_code": user_code_fingerprint(self._pepper, code or typed[:32])},
        )
        return found

    async def reopen(self, device_code_hash: bytes) -> Found | None:
        """The grant a confirmation form names, if it is still pending and live."""
        grant = await self._grants.get(device_code_hash)
        return await self._with_client(grant)

    async def decide(self, found: Found, session: Session, *, approved: bool) -> bool:
        """Approve or deny for the signed-in user; False if it was decided or expired since."""
        decided = await self._grants.decide(
            found.grant.device_code_hash,
            DeviceDecision(approved, session.user_id, session.auth_time, session.session_ref),
            self._clock.now(),
        )
        if decided is not None:
            self._record(
                "device.approved" if approved else "device.denied",
                "success" if approved else "info",
                session,
                found.client.client_id,
                {"scope": found.grant.scope},
            )
        return decided is not None

    async def _pending(self, user_code_hash: bytes) -> Found | None:
        return await self._with_client(await self._grants.find_by_user_code(user_code_hash))

    async def _with_client(self, grant: DeviceGrant | None) -> Found | None:
        now = self._clock.now()
        if grant is None or grant.status != "pending" or not grant.live(now):
            return None
        client = await self._clients.get(grant.client_id)
        return Found(grant, client) if client is not None else None

    def _record(
        self,
        event: str,
        outcome: Outcome,
        session: Session,
        client_id: str | None,
        detail: dict[str, object],
    ) -> None:
        self._audit.record(
            AuditEvent(
                at=self._clock.now(),
                event=event,
                outcome=outcome,
                actor=f"user:{session.user_id}",
                client_id=client_id,
                subject=session.user_id,
                detail=detail,
            )
        )
