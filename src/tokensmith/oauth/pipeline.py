"""The one pipeline of every endpoint that authenticates an OAuth client (RFC 6749 §2.3).

/token, /introspect, /revoke and /api-keys/verify, and every later endpoint that checks a
client's credentials, are a ``ClientEndpoint``: a handler plus the steps every such endpoint
takes, in this order, written once so that no endpoint can skip one:

1. ``precheck``: what the endpoint can refuse before anyone is authenticated (at /token, a
   grant_type that does not exist here);
2. the address's request rate, if one is set;
3. authentication (``oauth/client_auth.py``; the credentials were parsed once, with the request);
4. judgement, in one atomic step: 429 if the claimed client at this address, or the address, is
   locked, right secret or wrong; else a wrong one is counted against both;
5. admission: an automatic response's hold on the client, and the client's own request rate;
6. the endpoint's own rule on public clients, then its handler;
7. the audit trail: the handler's event, or the refusal with its private detail (a routine
   refusal, ``OAuthError.audited`` False, only goes to ``on_unaudited``: a metric);
8. error mapping: every ``OAuthError`` becomes the protocol's own JSON error, never a 500.

Failures count against the claimed client *at the address they came from*: whoever names a
client cannot lock out its genuine owner where the owner calls from (SECURITY 58).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from tokensmith.audit.events import AuditEvent, AuditSink, Outcome
from tokensmith.core.challenges import render_challenge
from tokensmith.core.clock import Clock
from tokensmith.errors import InvalidClient, OAuthError, TooManyRequests, UseDpopNonce
from tokensmith.oauth.client_auth import ClientAuthenticator
from tokensmith.oauth.clients import Client
from tokensmith.oauth.request import ProtocolRequest

__all__ = ["Answer", "ClientEndpoint", "Gate", "Handler", "Precheck", "error_answer"]

# RFC 6749 §5.1: token responses MUST NOT be cached; the other endpoints answer the same way.
NO_STORE: Mapping[str, str] = MappingProxyType({"cache-control": "no-store", "pragma": "no-cache"})
BASIC_CHALLENGE = render_challenge("Basic", realm="tokensmith", charset="UTF-8")


class Gate(Protocol):
    """The lockout and rate rules, as the pipeline needs them (``runtime/throttle.py``)."""

    async def within_address_rate(self, address: str | None) -> None: ...

    async def judge_client(self, *, failed: bool, claimed: str | None, address: str) -> None: ...

    async def admit(self, client: Client) -> None: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """A framework-free response, and the audit event it is the outcome of (if any)."""

    status: int = 200
    body: Any = None  # JSON-serialisable; None is an empty body
    headers: Mapping[str, str] = field(default_factory=lambda: NO_STORE)
    event: str | None = None
    outcome: Outcome = "success"
    fingerprint: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


Handler = Callable[[ProtocolRequest, Client | None], Awaitable[Answer]]
Precheck = Callable[[ProtocolRequest], None]
ErrorRenderer = Callable[[OAuthError], Answer]
Unaudited = Callable[[str, OAuthError], None]  # (endpoint name, the routine refusal)


def error_answer(error: OAuthError) -> Answer:
    """RFC 6749 §5.2. A 401 invalid_client carries the challenge of the scheme the client may
    use; a 429 and a 503 say when to come back."""
    body = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    headers = dict(NO_STORE)
    if isinstance(error, InvalidClient) and error.status == 401:
        headers["www-authenticate"] = BASIC_CHALLENGE
    if isinstance(error, TooManyRequests):
        headers["retry-after"] = str(error.retry_after)
    elif error.status == 503:  # a dependency away (Redis for DPoP records): retry shortly
        headers["retry-after"] = "5"
    if isinstance(error, UseDpopNonce) and error.nonce is not None:
        headers["dpop-nonce"] = error.nonce  # RFC 9449 §8.1
    return Answer(error.status, body, headers)


class ClientEndpoint:
    """One endpoint behind the client pipeline. ``client_optional``: a request that presents
    no client at all (``ProtocolRequest.presents_client``) reaches the handler with None."""

    def __init__(
        self,
        *,
        name: str,
        handler: Handler,
        authenticator: ClientAuthenticator,
        gate: Gate,
        audit: AuditSink,
        clock: Clock,
        precheck: Precheck | None = None,
        confidential_only: bool = False,
        client_optional: bool = False,
        render_error: ErrorRenderer = error_answer,
        on_unaudited: Unaudited | None = None,
    ) -> None:
        self.name = name
        self._handler = handler
        self._authenticator = authenticator
        self._gate = gate
        self._audit = audit
        self._clock = clock
        self._precheck = precheck
        self._confidential_only = confidential_only
        self._client_optional = client_optional
        self._render_error = render_error
        self._on_unaudited = on_unaudited

    async def __call__(self, request: ProtocolRequest) -> Answer:
        client: Client | None = None
        try:
            if self._precheck is not None:
                self._precheck(request)
            if not self._client_optional or request.presents_client:
                client = await self.authenticate(request)
                if self._confidential_only and client.is_public:
                    raise InvalidClient(f"{self.name} is for confidential clients")
            answer = await self._handler(request, client)
        except OAuthError as error:
            return self.refuse(request, error)
        if answer.event is not None:
            self._record(answer, client)
        return answer

    async def authenticate(self, request: ProtocolRequest) -> Client:
        """Steps 2 to 5: the calling client, or InvalidClient / TooManyRequests / InvalidRequest."""
        address = request.source
        await self._gate.within_address_rate(address)
        try:
            if request.credentials is None:
                raise request.credentials_error or InvalidClient("client authentication failed")
            client = await self._authenticator.authenticate(request.credentials)
        except InvalidClient:
            await self._gate.judge_client(
                failed=True, claimed=request.claimed_client, address=address
            )
            raise
        await self._gate.judge_client(failed=False, claimed=request.claimed_client, address=address)
        await self._gate.admit(client)
        return client

    def _record(self, answer: Answer, client: Client | None) -> None:
        client_id = client.client_id if client is not None else None
        self._audit.record(
            AuditEvent(
                at=self._clock.now(),
                event=answer.event or "",
                outcome=answer.outcome,
                actor=f"client:{client_id}" if client_id else None,
                client_id=client_id,
                fingerprint=answer.fingerprint,
                detail=dict(answer.detail),
            )
        )

    def refuse(self, request: ProtocolRequest, error: OAuthError) -> Answer:
        """A refusal is an audit event; its private detail goes there, never to the client.
        Also for a request refused before it could be read whole (its form, say)."""
        if not error.audited:
            if self._on_unaudited is not None:
                self._on_unaudited(self.name, error)
            return self._render_error(error)
        self._audit.record(
            AuditEvent(
                at=self._clock.now(),
                event=f"{self.name}.refused",
                outcome="denied" if error.status in (401, 403) else "failure",
                client_id=request.claimed_client,
                detail={
                    "error": error.error,
                    "description": error.description,
                    **({"detail": error.detail} if error.detail else {}),
                    "grant_type": (request.params.get("grant_type") or "")[:64] or None,
                },
            )
        )
        return self._render_error(error)
