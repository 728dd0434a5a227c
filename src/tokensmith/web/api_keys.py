"""HTTP for API keys: verification (for gateways and APIs) and leak reports (for secret scanners).

``POST /api-keys/verify`` is described in ``oauth/key_verification.py``: the key in the
``X-API-Key`` header, never in a URL or a form, the caller anonymous or an authenticated client.

``POST /api-keys/leaks`` takes a JSON array of ``{"token", "type", "url", "source"}`` candidates
from a reporter holding an access token with the ``tokensmith:leaks`` scope, revokes every genuine
key at once, and answers with a label per candidate (by SHA-256, never echoing the candidate).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.apikeys.lifecycle import MAX_LEAK_REPORTS, LeakReport, LeakVerdict
from tokensmith.errors import (
    InvalidRequest,
    OAuthError,
)
from tokensmith.oauth.secret_leaks import looks_like_client_secret
from tokensmith.web.bearer import BearerRefused, require_bearer
from tokensmith.web.endpoints import client_endpoint
from tokensmith.web.forms import read_json
from tokensmith.web.responses import error_response, json_response
from tokensmith.web.state import protocol_of, services_of

__all__ = ["LEAKS_SCOPE", "report_leaks", "verify"]

LEAKS_SCOPE = "tokensmith:leaks"
_NO_STORE = {"cache-control": "no-store"}


# The pipeline endpoint (oauth/key_verification.py): client authentication only when the
# caller sends credentials or a body, with the same lockouts and admission as /token.
verify = client_endpoint(lambda request: protocol_of(request).key_verification, form=False)


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
    secrets = protocol_of(request).secret_leaks
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
