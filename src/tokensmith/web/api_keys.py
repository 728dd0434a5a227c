"""HTTP for API keys: verification (for gateways and APIs) and leak reports (for secret scanners).

``POST /api-keys/verify`` takes the key in the ``X-API-Key`` header, never in a URL or a form. A
caller that authenticates as a confidential client with the ``may_vouch_client_ip`` permission
(a gateway, say) may name the address its own caller came from in ``client_ip``; anyone else is
judged by their own address, and a ``client_ip`` from a client without the permission is
refused (403 ``unauthorized_client``). Client authentication here is the same path, lockouts
included, as at /token (``web/client_auth.py``).

``POST /api-keys/leaks`` takes a JSON array of ``{"token", "type", "url", "source"}`` candidates
from a reporter holding an access token with the ``tokensmith:leaks`` scope, revokes every genuine
key at once, and answers with a label per candidate (by SHA-256, never echoing the candidate).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.apikeys.lifecycle import MAX_LEAK_REPORTS, LeakReport, LeakVerdict
from tokensmith.apikeys.verifier import ApiKeyIdentity, ApiKeyRefused
from tokensmith.audit.events import AuditEvent
from tokensmith.core.challenges import render_challenge
from tokensmith.core.secrets import fingerprint
from tokensmith.errors import (
    InvalidClient,
    InvalidRequest,
    OAuthError,
    TooManyRequests,
    UnauthorizedClient,
)
from tokensmith.oauth.params import Params
from tokensmith.oauth.secret_leaks import ClientSecretLeaks, looks_like_client_secret
from tokensmith.runtime.services import Services
from tokensmith.web.bearer import BearerRefused, require_bearer
from tokensmith.web.client_auth import authenticate_client
from tokensmith.web.forms import has_body, read_form, read_json
from tokensmith.web.metrics import AUDIT_EVENTS
from tokensmith.web.responses import error_response, json_response
from tokensmith.web.state import services_of
from tokensmith.web.throttle import judge, peer, within_address_rate

__all__ = ["LEAKS_SCOPE", "report_leaks", "verify"]

LEAKS_SCOPE = "tokensmith:leaks"
_NO_STORE = {"cache-control": "no-store"}
_HEADER = "x-api-key"
_REALM = "tokensmith"
_BASIC_CHALLENGE = render_challenge("Basic", realm=_REALM)


async def verify(request: Request) -> Response:
    services = services_of(request)
    try:
        source_ip = await _source_address(request)
    except OAuthError as error:
        extra = {"www-authenticate": _BASIC_CHALLENGE} if error.status == 401 else {}
        return error_response(error, {**_NO_STORE, **extra})
    presented = request.headers.get(_HEADER, "").strip()
    try:
        identity = await _verify_key(request, presented, source_ip)
    except ApiKeyRefused as refused:
        services.trail.record(
            AuditEvent(
                at=services.clock.now(),
                event="api_key.refused",
                outcome="denied",
                source_ip=source_ip,
                user_agent=request.headers.get("user-agent", "")[:256] or None,
                fingerprint=refused.key_id or (fingerprint(presented) if presented else None),
                detail={"reason": refused.reason},
            )
        )
        return key_error(refused, missing=not presented)
    AUDIT_EVENTS.labels("api_key.verified", "success", "").inc()
    # Seen by the anomaly rules (new network, volume), not stored: a use is not a change.
    services.anomalies.observe(
        AuditEvent(
            at=services.clock.now(),
            event="api_key.used",
            outcome="success",
            fingerprint=identity.key_id,
            source_ip=source_ip,
            user_agent=request.headers.get("user-agent"),
        )
    )
    return json_response(identity.as_json(), headers=_NO_STORE)


async def _verify_key(request: Request, presented: str, source_ip: str) -> ApiKeyIdentity:
    """The key's identity, behind the address's lockout. The key is checked first (a keyed hash),
    then one atomic step refuses a locked address and counts a wrong key, so parallel guesses
    never get more than the threshold of answers (SECURITY 57)."""
    try:
        await within_address_rate(request, source_ip)
        try:
            identity = await _check_key(services_of(request), presented, source_ip)
        except ApiKeyRefused as refused:
            # Guessing, or a scanner's wild shot; an empty header is no guess.
            guess = refused.reason in ("malformed", "invalid") and bool(presented)
            await judge(request, failed=guess, address=source_ip)
            raise
        await judge(request, failed=False, address=source_ip)
    except TooManyRequests as locked:
        raise ApiKeyRefused("locked_out", retry_after=locked.retry_after) from None
    return identity


async def _check_key(services: Services, presented: str, source_ip: str) -> ApiKeyIdentity:
    if not presented:
        raise ApiKeyRefused("malformed")
    identity = await services.key_verifier.verify(presented, source_ip)
    if services.settings.anomaly_spike_action == "throttle":
        # Held by the volume_spike response (runtime/responses.py), on every node.
        held = await services.limits.locked(f"key:{identity.key_id}")
        if held is not None:
            raise ApiKeyRefused("rate_limited", key_id=identity.key_id, retry_after=held)
    return identity


def key_error(refused: ApiKeyRefused, *, missing: bool = False) -> Response:
    description = (
        f"send the API key in the {_HEADER.title()} header" if missing else refused.description
    )
    challenge = render_challenge(
        "ApiKey", realm=_REALM, error=refused.error, error_description=description
    )
    headers = {**_NO_STORE, "www-authenticate": challenge}
    if refused.retry_after is not None:
        headers["retry-after"] = str(refused.retry_after)
    body = {"error": refused.error, "error_description": description}
    return json_response(body, refused.status, headers)


async def _source_address(request: Request) -> str:
    """The address the key is used from: the peer's own, or what a client allowed to vouch for
    its callers' addresses says (a gateway's ``client_ip``)."""
    own = peer(request)
    body = has_body(request)
    if "authorization" not in request.headers and not body:
        return own
    services = services_of(request)
    params = await read_form(request, services.settings.max_body_bytes) if body else Params([])
    # The same client authentication, lockouts and admission as /token (SECURITY 40, 58).
    client = await authenticate_client(request, params)
    if client.is_public:
        raise InvalidClient("only a confidential client may verify keys on behalf of others")
    claimed = params.get("client_ip")
    if claimed is None:
        return own
    if not client.may_vouch_client_ip:
        raise MayNotVouch("this client may not send client_ip (see --may-vouch-client-ip)")
    if len(claimed) > 64:
        raise InvalidRequest("client_ip is not an IP address")
    return claimed


class MayNotVouch(UnauthorizedClient):
    """An authenticated client without the permission to name its callers' addresses: sent as
    unauthorized_client, with 403 (it is authenticated, and asks for what it may not do)."""

    code = "client_forbidden"


async def report_leaks(request: Request) -> Response:
    services = services_of(request)
    try:
        record = await require_bearer(request, LEAKS_SCOPE)
    except BearerRefused as refused:
        return refused.response()
    try:
        reports = _leak_reports(await read_json(request, services.settings.max_body_bytes))
        verdicts = await _judge_leaks(request, reports, record.client_id)
    except OAuthError as error:
        return error_response(error, _NO_STORE)
    body = [
        {"token_hash": v.token_hash, "token_type": v.token_type, "label": v.label} for v in verdicts
    ]
    return json_response(body, headers=_NO_STORE)


async def _judge_leaks(
    request: Request, reports: list[LeakReport], reporter: str
) -> list[LeakVerdict]:
    """API keys go to the key manager, client secrets (``tscs_``) to their own judge; the
    answer keeps the order of the candidates."""
    services = services_of(request)
    if len(reports) > MAX_LEAK_REPORTS:
        raise InvalidRequest(f"at most {MAX_LEAK_REPORTS} candidates per report")
    secrets = ClientSecretLeaks(
        services.clients,
        services.master.pepper,
        services.clock,
        services.trail,
        services.webhooks.notify,
    )
    keys = [r for r in reports if not looks_like_client_secret(r.token)]
    judged = iter(await services.key_manager.report_leaks(keys, reporter))
    return [
        await secrets.judge(r, reporter) if looks_like_client_secret(r.token) else next(judged)
        for r in reports
    ]


def _leak_reports(body: Any) -> list[LeakReport]:
    if not isinstance(body, list):
        raise InvalidRequest("the body must be a JSON array of candidates")
    reports = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("token"), str):
            raise InvalidRequest('each candidate must be an object with a "token" string')
        fields = {name: item.get(name, "") for name in ("type", "url", "source")}
        if not all(isinstance(value, str) for value in fields.values()):
            raise InvalidRequest("type, url and source must be strings")
        reports.append(LeakReport(item["token"][:512], **fields))
    return reports
