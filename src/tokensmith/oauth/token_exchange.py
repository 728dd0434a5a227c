"""The token exchange grant (RFC 8693): a token of ours traded for a narrower one.

A confidential client presents a subject token (and, for delegation, an actor token) and gets
an access token for the same subject: with the subject's scope or less (§2.1 ``scope``; wider is
``invalid_scope``), for the subject's audience or a target its policy names (``audience``,
``resource``; anything else is ``invalid_target``), living no longer than the subject token
(nor the actor token) has left. Without an actor it is impersonation; with one, delegation, and
the new token says who acts in ``act``, above the subject token's own chain (§4.1). No refresh
token is issued (§2.2.1: it is optional, and a trade must not outlive what was traded).

A Tokensmith API key is a subject too (``urn:tokensmith:params:oauth:token-type:api-key``, for
clients whose policy allows it): the answer is a short JWT with the key's scopes and audiences,
naming its owner as ``sub`` and the key only by its public id (``api_key_id``). And a gateway
may ask for a transaction token (draft-ietf-oauth-transaction-tokens), built by
``core/txn_tokens.py``. Every exchange, granted or refused, is a ``token.exchanged`` audit event.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tokensmith.audit.events import AuditEvent, AuditSink
from tokensmith.core.clock import Clock
from tokensmith.core.scopes import format_scope
from tokensmith.core.secrets import constant_time_equals
from tokensmith.core.txn_tokens import TXN_ISSUED_TOKEN_TYPE, TXN_TOKEN_JWT_TYP, txn_claims
from tokensmith.errors import (
    InvalidGrant,
    InvalidRequest,
    InvalidTarget,
    OAuthError,
    UnauthorizedClient,
)
from tokensmith.jose.jws import sign_jwt
from tokensmith.jose.keys import SigningKey
from tokensmith.oauth.access_tokens import TokenContext
from tokensmith.oauth.clients import Client
from tokensmith.oauth.exchange_policy import (
    ACCESS_TOKEN_TYPE,
    API_KEY_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    JWT_TOKEN_TYPE,
    SUBJECT_KINDS,
    TOKEN_EXCHANGE_GRANT,
    TXN_TOKEN_TYPE_URN,
    ExchangePolicy,
)
from tokensmith.oauth.exchange_subjects import Party, TokenReader
from tokensmith.oauth.issuance import TokenPolicy, TokenResponder
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.scopes import narrow_scope

__all__ = ["ExchangeSettings", "TokenExchangeGrant"]

_KIND_NAMES = {uri: name for name, uri in SUBJECT_KINDS.items()}
_ACTOR_TYPES = frozenset({ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE})  # an API key acts for no one
_REQUESTED = frozenset({ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, TXN_TOKEN_TYPE_URN})
MAX_ACT_DEPTH = 5  # a longer delegation chain is refused rather than grown without end
_MAX_CONTEXT_BYTES = 4096
_TXN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    api_key_ttl: int = 300  # TOKENSMITH_API_KEY_EXCHANGE_TTL
    txn_audience: str | None = None  # TOKENSMITH_TXN_TOKEN_AUDIENCE: the trust domain
    txn_ttl: int = 60  # TOKENSMITH_TXN_TOKEN_TTL


@dataclass
class _Trace:
    """What the audit event of this exchange names, filled in as the request is read."""

    detail: dict[str, Any] = field(default_factory=dict)
    subject: str | None = None
    fingerprint: str | None = None


class TokenExchangeGrant:
    grant_type = TOKEN_EXCHANGE_GRANT
    parameters = frozenset(
        {
            "subject_token",
            "subject_token_type",
            "actor_token",
            "actor_token_type",
            "requested_token_type",
            "scope",
            "audience",
            "resource",
            "request_context",
            "request_details",
        }
    )
    confidential_only = True  # RFC 8693 §2.1: the client authenticates; a public one may not

    def __init__(
        self,
        *,
        reader: TokenReader,
        responder: TokenResponder,
        policy: TokenPolicy,
        settings: ExchangeSettings,
        issuer: str,
        signing_key: Callable[[], SigningKey],
        clock: Clock,
        audit: AuditSink,
    ) -> None:
        self._reader = reader
        self._responder = responder
        self._policy = policy
        self._settings = settings
        self._issuer = issuer
        self._signing_key = signing_key
        self._clock = clock
        self._audit = audit

    async def handle(self, request: ProtocolRequest, client: Client) -> dict[str, Any]:
        trace = _Trace()
        try:
            body = await self._exchange(request, client, trace)
        except OAuthError as error:
            trace.detail["error"] = error.error
            self._record(
                request, client, trace, "denied" if error.status in (401, 403) else "failure"
            )
            raise
        self._record(request, client, trace, "success")
        return body

    async def _exchange(
        self, request: ProtocolRequest, client: Client, trace: _Trace
    ) -> dict[str, Any]:
        params = request.params
        policy = _policy_of(client)
        kind, actor_kind, requested = _token_types(request, policy)
        trace.detail.update(subject_token_type=kind, requested_token_type=requested)
        subject = await self._reader.read(params.get("subject_token") or "", kind, request.source)
        trace.subject, trace.fingerprint = subject.subject, subject.fingerprint
        if subject.key_id is not None:
            trace.detail["api_key_id"] = subject.key_id
        _must_accept(subject, client, policy, request)
        actor = None
        if actor_kind is not None:
            actor = await self._reader.read(
                params.get("actor_token") or "", actor_kind, request.source
            )
            trace.detail.update(actor=actor.subject, actor_token_type=actor_kind)
            _must_accept(actor, client, policy, request)
            if actor.act is not None:
                # Its sub is whom it was delegated for, not who acts: naming that one as the
                # actor (or matching it to the allowlist) would credit the wrong party.
                raise InvalidRequest("an actor_token must not itself be a delegated token")
            if policy.actors is not None and actor.subject not in policy.actors:
                raise InvalidRequest("this actor may not act through this client")
        elif not policy.allow_impersonation:
            raise InvalidRequest("this client may only delegate: send an actor_token")
        allowed = subject.scope if subject.scope is not None else client.scopes
        if subject.kind == ID_TOKEN_TYPE:  # the user's consent, within what the client has now
            allowed &= client.scopes
        scope = narrow_scope(params.get("scope"), allowed)
        trace.detail["scope"] = format_scope(scope)
        lifetime = self._lifetime(client, subject, actor, requested)
        if requested == TXN_TOKEN_TYPE_URN:
            return self._txn_token(request, client, policy, subject, actor, scope, lifetime, trace)
        audience = self._audience(request, subject, policy)
        trace.detail["audience"] = " ".join(audience)
        claims: dict[str, Any] = {}
        act = _act(actor, subject)
        if act is not None:
            claims["act"] = act
        if subject.key_id is not None:
            claims["api_key_id"] = subject.key_id
        # A JWT when asked for one (§3), and always for an API key (a token APIs verify alone).
        as_jwt = requested == JWT_TOKEN_TYPE or kind == API_KEY_TOKEN_TYPE
        ctx = TokenContext(
            client=replace(client, access_token_format="jwt") if as_jwt else client,
            subject=subject.subject,
            scope=scope,
            audience=audience,
            lifetime=lifetime,
            grant_type=self.grant_type,
            claims=claims,
        )
        body = await self._responder.respond(request, ctx)
        body["issued_token_type"] = requested
        return body

    def _lifetime(self, client: Client, subject: Party, actor: Party | None, requested: str) -> int:
        """The new token's lifetime: never past what the subject (or actor) token has left."""
        now = self._clock.now()
        if requested == TXN_TOKEN_TYPE_URN:
            lifetime = self._settings.txn_ttl
        elif subject.kind == API_KEY_TOKEN_TYPE:
            lifetime = min(self._settings.api_key_ttl, self._policy.max_lifetime)
        else:
            lifetime = self._policy.lifetime_for(client)
        for party in (subject, actor):
            if party is not None and party.expires_at is not None:
                lifetime = min(lifetime, party.expires_at - now)
        if lifetime < 1:
            raise InvalidGrant("the subject or actor token is not valid", detail="expires now")
        return lifetime

    def _audience(
        self, request: ProtocolRequest, subject: Party, policy: ExchangePolicy
    ) -> tuple[str, ...]:
        """§2.1 ``audience`` and ``resource`` (RFC 8707): only what the subject already had, or
        what the client's policy names; a bound API key's token stays within its audiences."""
        requested = (*request.params.all("audience"), *request.params.all("resource"))
        default = self._policy.default_audience
        if subject.kind == API_KEY_TOKEN_TYPE and subject.audience:
            allowed, fallback = set(subject.audience), subject.audience
        elif subject.kind == ACCESS_TOKEN_TYPE:
            allowed, fallback = {*policy.audiences, *subject.audience}, subject.audience
        else:
            allowed, fallback = {*policy.audiences, default}, (default,)
        if not requested:
            return fallback
        for target in requested:
            if target not in allowed:
                raise InvalidTarget("this client may not exchange for that audience or resource")
        return tuple(dict.fromkeys(requested))

    def _txn_token(
        self,
        request: ProtocolRequest,
        client: Client,
        policy: ExchangePolicy,
        subject: Party,
        actor: Party | None,
        scope: frozenset[str],
        lifetime: int,
        trace: _Trace,
    ) -> dict[str, Any]:
        if not policy.txn_tokens:
            raise UnauthorizedClient("this client may not request transaction tokens")
        domain = self._settings.txn_audience
        if domain is None:
            raise InvalidRequest("transaction tokens are not configured on this server")
        params = request.params
        for target in (*params.all("audience"), *params.all("resource")):
            if target != domain:
                raise InvalidTarget("a transaction token is for this server's trust domain only")
        context = _json_object(params.get("request_context"), "request_context")
        details = _json_object(params.get("request_details"), "request_details")
        txn = details.pop("txn", None) if details else None
        if txn is not None and (not isinstance(txn, str) or not _TXN_ID.fullmatch(txn)):
            raise InvalidRequest("request_details.txn is 1 to 128 of A-Z a-z 0-9 . _ : -")
        txn = txn or secrets.token_urlsafe(16)
        purpose = format_scope(scope)
        claims = txn_claims(
            issuer=self._issuer,
            audience=domain,
            subject_id=subject.subject,
            txn=txn,
            purpose=purpose or None,
            authorization_details=details or None,
            request_context=context or None,
            now=self._clock.now(),
            ttl=lifetime,
            scope=purpose or None,
        )
        act = _act(actor, subject)
        if act is not None:
            claims["act"] = act
        trace.detail.update(audience=domain, txn=txn)
        token = sign_jwt(self._signing_key(), claims, typ=TXN_TOKEN_JWT_TYP)
        return {
            "access_token": token,
            "issued_token_type": TXN_TOKEN_TYPE_URN,
            "token_type": TXN_ISSUED_TOKEN_TYPE,
            "expires_in": lifetime,
        }

    def _record(
        self, request: ProtocolRequest, client: Client, trace: _Trace, outcome: Any
    ) -> None:
        self._audit.record(
            AuditEvent(
                at=self._clock.now(),
                event="token.exchanged",
                outcome=outcome,
                actor=f"client:{client.client_id}",
                client_id=client.client_id,
                subject=trace.subject,
                source_ip=request.source,
                fingerprint=trace.fingerprint,
                detail={"client": client.client_id, **trace.detail},
            )
        )


def _policy_of(client: Client) -> ExchangePolicy:
    try:
        return ExchangePolicy.of(client.token_exchange)
    except ValueError as exc:  # stored by hand past registration's check: fail closed
        raise UnauthorizedClient(
            "this client's token exchange policy is not valid", detail=str(exc)
        ) from None


def _token_types(request: ProtocolRequest, policy: ExchangePolicy) -> tuple[str, str | None, str]:
    """The subject's, the actor's and the requested token type, each one we accept (§2.1)."""
    params = request.params
    kind = params.get("subject_token_type")
    if params.get("subject_token") is None or kind is None:
        raise InvalidRequest("subject_token and subject_token_type are required")
    if kind not in _KIND_NAMES:
        raise InvalidRequest("unsupported subject_token_type")
    if _KIND_NAMES[kind] not in policy.subject_types:
        raise InvalidRequest(f"this client may not exchange {_KIND_NAMES[kind]} subjects")
    actor_kind = params.get("actor_token_type")
    if (params.get("actor_token") is None) != (actor_kind is None):
        raise InvalidRequest("actor_token and actor_token_type go together")
    if actor_kind is not None and actor_kind not in _ACTOR_TYPES:
        raise InvalidRequest("unsupported actor_token_type")
    requested = params.get("requested_token_type") or ACCESS_TOKEN_TYPE
    if requested not in _REQUESTED:
        raise InvalidRequest("unsupported requested_token_type")
    return kind, actor_kind, requested


def _must_accept(
    party: Party, client: Client, policy: ExchangePolicy, request: ProtocolRequest
) -> None:
    """A token the client may trade: issued to it, meant for it, or for an audience it serves.
    (An API key is its own credential: whoever holds it may use it anyway.)"""
    if party.kind == API_KEY_TOKEN_TYPE:
        return
    if party.client_id == client.client_id:
        _must_prove_key(party, request)
        return
    if client.client_id in party.audience:
        return
    if set(party.audience) & set(policy.accept_audiences):
        return
    raise InvalidGrant(
        "the token was not issued to this client nor for an audience it serves",
        detail=f"token of client {party.client_id}",
    )


def _must_prove_key(party: Party, request: ProtocolRequest) -> None:
    """RFC 9449 §6: a DPoP-bound token's own client holds its key, so its exchange proves it.
    Otherwise the token and the client's secret, stolen together, would trade the binding away
    for a bearer token. (A resource server trading a token sent to it has checked the proof.)"""
    if party.dpop_jkt is None:
        return
    # "" is a cnf we cannot read: no proof can match it, so the token cannot be traded here.
    if (
        not party.dpop_jkt
        or request.dpop_jkt is None
        or not constant_time_equals(request.dpop_jkt, party.dpop_jkt)
    ):
        raise InvalidGrant(
            "the token is DPoP-bound: send a proof by its key", detail="no proof by cnf.jkt"
        )


def _act(actor: Party | None, subject: Party) -> dict[str, Any] | None:
    """RFC 8693 §4.1: the current actor outermost, earlier actors nested below it. Without a new
    actor the subject's own chain is kept: an impersonation must not launder a delegated token
    into one that looks like the subject's own."""
    if actor is None:
        return dict(subject.act) if subject.act is not None else None
    act: dict[str, Any] = {"sub": actor.subject}
    if actor.client_id is not None:
        act["client_id"] = actor.client_id
    if subject.act is not None:
        if _depth(subject.act) >= MAX_ACT_DEPTH:
            raise InvalidRequest(f"a delegation chain is at most {MAX_ACT_DEPTH} actors long")
        act["act"] = dict(subject.act)
    return act


def _depth(act: Mapping[str, Any]) -> int:
    depth = 1
    inner = act.get("act")
    while isinstance(inner, Mapping):
        depth += 1
        inner = inner.get("act")
    return depth


def _json_object(text: str | None, name: str) -> dict[str, Any]:
    """A JSON object, sent as it is or base64url-encoded (earlier drafts), small and flat-ish."""
    if text is None:
        return {}
    if len(text) > _MAX_CONTEXT_BYTES:
        raise InvalidRequest(f"{name} is too long")
    raw = text
    if not text.lstrip().startswith("{"):
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")
        except (binascii.Error, ValueError):
            raise InvalidRequest(f"{name} is not a JSON object") from None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidRequest(f"{name} is not a JSON object") from None
    if not isinstance(value, dict) or _nesting(value) > 4:
        raise InvalidRequest(f"{name} is a JSON object nested at most 4 levels")
    try:  # it goes into a signed token: NaN, Infinity or a lone surrogate would break it
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        raise InvalidRequest(f"{name} holds a number or string JSON cannot carry") from None
    return value


def _nesting(value: object, level: int = 0) -> int:
    if level > 4:
        return level
    if isinstance(value, dict):
        return max((_nesting(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_nesting(v, level + 1) for v in value), default=level + 1)
    return level
