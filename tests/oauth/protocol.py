"""The grants' dependencies on in-memory stores and a FrozenClock: protocol tests, no server.

``memory_grant_deps`` is the one place a test builds a ``GrantDeps`` (oauth/issuance.py) without
the running services; ``runtime/protocol.py: build_protocol`` is the production one, and when
``GrantDeps`` changes this is the function to change with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tokensmith.audit.events import AuditEvent
from tokensmith.core.clock import FrozenClock
from tokensmith.core.sealing import MasterKey, generate_master_key
from tokensmith.jose.keys import SigningKey, generate_signing_key
from tokensmith.oauth.access_tokens import AccessTokenIssuer
from tokensmith.oauth.issuance import GrantDeps, TokenPolicy, TokenResponder
from tokensmith.oidc.id_tokens import IdTokenIssuer
from tokensmith.persistence.memory import MemoryStores

ISSUER = "https://issuer.example.com"
AUDIENCE = "https://api.example.com"


@dataclass
class RecordedAudit:
    """An ``AuditSink`` that keeps what it is told, for the test to read."""

    events: list[AuditEvent] = field(default_factory=list)

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    def named(self, name: str) -> list[AuditEvent]:
        return [e for e in self.events if e.event == name]


@dataclass(frozen=True)
class MemoryGrant:
    """What a protocol test holds: the deps, and the stores and audit events behind them."""

    deps: GrantDeps
    stores: MemoryStores
    audit: RecordedAudit
    signing_key: SigningKey


def memory_grant_deps(
    clock: FrozenClock, *, stores: MemoryStores | None = None, **policy: int
) -> MemoryGrant:
    """``GrantDeps`` over ``persistence.memory`` stores, the server's default lifetimes unless
    ``policy`` says otherwise (``TokenPolicy`` fields)."""
    stores = stores or MemoryStores()
    master = MasterKey.from_text(generate_master_key())
    key = generate_signing_key("ES256")
    audit = RecordedAudit()
    lifetimes: dict[str, int] = {
        "access_token_ttl": 300,
        "max_lifetime": 3600,
        "refresh_token_ttl": 30 * 86400,
        **policy,
    }
    deps = GrantDeps(
        clients=stores.clients,
        tokens=stores.tokens,
        refresh=stores.refresh,
        codes=stores.codes,
        users=stores.users,
        responder=TokenResponder(
            access=AccessTokenIssuer(
                issuer=ISSUER, signing_key=lambda: key, pepper=master.pepper, clock=clock
            ),
            id_tokens=IdTokenIssuer(
                issuer=ISSUER, signing_key=lambda: key, clock=clock, lifetime=300
            ),
            tokens=stores.tokens,
            audit=audit,
            clock=clock,
        ),
        policy=TokenPolicy(default_audience=AUDIENCE, **lifetimes),
        pepper=master.pepper,
        master=master,
        clock=clock,
        audit=audit,
    )
    return MemoryGrant(deps, stores, audit, key)
