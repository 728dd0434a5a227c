"""Pushed authorization requests (RFC 9126).

``/par`` sits behind the client pipeline (``oauth/pipeline.py``), like /token: lockouts, client
authentication, admission and the audit trail come first. A public client names itself with
``client_id`` and no secret, as at /token (RFC 9126 §2 allows it; the pushed request still
cannot be altered or read in the browser). The pushed parameters are validated as the
authorization endpoint would validate them (§2.1), every refusal an OAuth JSON error rather
than a redirect; only the authorization parameters are kept, never a credential, under the
keyed hash of a ``request_uri`` of 256 random bits, for at most 60 s (§2.2).

At the authorization endpoint the ``request_uri`` and ``client_id`` are all that is read (§4).
The request is consumed at first sight, by one conditional write: from then on it travels in the
sealed interaction state of the login and consent forms (``oauth/interaction.py``), bound to this
browser, so the round trips work and the ``request_uri`` cannot be replayed.
"""

from __future__ import annotations

from typing import Any

from tokensmith.core.clock import Clock
from tokensmith.core.secrets import constant_time_equals, fingerprint, keyed_hash, random_token
from tokensmith.errors import (
    InvalidDpopProof,
    InvalidRequest,
    PageError,
    RedirectError,
    RequestNotSupported,
)
from tokensmith.oauth.authorization import validate_for_client
from tokensmith.oauth.clients import Client
from tokensmith.oauth.dpop import DpopChecker
from tokensmith.oauth.params import REPEATABLE, Params
from tokensmith.oauth.pipeline import Answer
from tokensmith.oauth.pushed_requests import PushedRequest, PushedRequestStore
from tokensmith.oauth.request import ProtocolRequest

__all__ = ["MAX_PAR_TTL", "PUSHED_PARAMETERS", "REQUEST_URI_PREFIX", "PushedAuthorization"]

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
MAX_PAR_TTL = 60
# What a pushed request keeps: the authorization request's own parameters. Credentials
# (client_secret, client_assertion) and anything unknown are dropped, never stored. dpop_jkt
# (RFC 9449 §10) is carried for the code's key binding.
PUSHED_PARAMETERS = (
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "prompt",
    "max_age",
    "resource",
    "dpop_jkt",
)
_MAX_REQUEST_URI = len(REQUEST_URI_PREFIX) + 64


def _invalid_uri() -> PageError:
    """RFC 9126 §4's invalid_request_uri, on our page: the request names no redirect we trust."""
    return PageError(
        "Invalid request_uri",
        "invalid_request_uri: this sign-in request is unknown, expired, already used, or was made "
        "by another application. Go back to the application and start again.",
    )


class PushedAuthorization:
    def __init__(
        self,
        *,
        store: PushedRequestStore,
        pepper: bytes,
        clock: Clock,
        ttl: int = MAX_PAR_TTL,
        dpop: DpopChecker | None = None,
        par_url: str = "",
    ) -> None:
        self._store = store
        self._pepper = pepper
        self._clock = clock
        self._ttl = min(ttl, MAX_PAR_TTL)
        self._dpop = dpop
        self._par_url = par_url  # htu: from the issuer, never from the Host header

    async def handle(self, request: ProtocolRequest, client: Client | None) -> Answer:
        """POST /par (§2.1, §2.2): 201 with the request_uri, or the OAuth JSON error."""
        assert client is not None  # the pipeline authenticates every caller here
        params = request.params
        if "request_uri" in params:
            raise InvalidRequest("request_uri may not be pushed")  # §2.1
        if "request" in params:
            raise RequestNotSupported("request objects (JAR, RFC 9101) are not supported")
        claimed = params.get("client_id")
        if claimed is not None and not constant_time_equals(claimed, client.client_id):
            raise InvalidRequest("client_id is not the authenticated client")
        kept = _authorization_params(params)
        scope = _validate(kept, client)
        await self._bind_dpop_key(request, kept)
        request_uri = REQUEST_URI_PREFIX + random_token(32)
        now = self._clock.now()
        await self._store.add(
            PushedRequest(
                request_hash=keyed_hash(self._pepper, request_uri),
                client_id=client.client_id,
                params=kept,
                created_at=now,
                expires_at=now + self._ttl,
            )
        )
        return Answer(
            status=201,
            body={"request_uri": request_uri, "expires_in": self._ttl},
            event="par.pushed",
            fingerprint=fingerprint(request_uri),
            detail={"scope": scope},
        )

    async def _bind_dpop_key(self, request: ProtocolRequest, kept: dict[str, Any]) -> None:
        """RFC 9449 §10.1: a proof at /par binds the code to its key, as ``dpop_jkt`` would; both
        given, they must agree. Checked last, so a refused push records no proof."""
        proof = request.header("dpop")
        if proof is None or self._dpop is None:
            return
        verified = await self._dpop.check(proof, method=request.method, url=self._par_url)
        named = kept.get("dpop_jkt")
        if named is not None and not constant_time_equals(str(named), verified.jkt):
            raise InvalidDpopProof("dpop_jkt is not the thumbprint of the DPoP proof's key")
        kept["dpop_jkt"] = verified.jkt

    async def take(self, params: Params) -> Params:
        """The parameters /authorize reads for a ``request_uri`` (§4), consumed now; a
        PageError (``invalid_request_uri``, shown on our page) if there are none to take."""
        client_id = params.get("client_id")
        if client_id is None:
            raise PageError(
                "Missing client", "The request does not say which application it is for."
            )
        request_uri = params.get("request_uri") or ""
        if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > _MAX_REQUEST_URI:
            raise _invalid_uri()
        pushed = await self._store.consume(
            keyed_hash(self._pepper, request_uri), client_id, self._clock.now()
        )
        if pushed is None:
            raise _invalid_uri()
        return Params([*_pairs(pushed.params), ("client_id", client_id)])


def _authorization_params(params: Params) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name in PUSHED_PARAMETERS:
        if name in REPEATABLE:
            if params.all(name):
                kept[name] = list(params.all(name))
        elif (value := params.get(name)) is not None:
            kept[name] = value
    return kept


def _pairs(stored: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in stored.items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((name, str(v)) for v in values)
    return pairs


def _validate(kept: dict[str, Any], client: Client) -> str:
    """As /authorize would (§2.1), but every refusal is the JSON error of this endpoint; the
    scope that will be asked for."""
    try:
        request = validate_for_client(Params(_pairs(kept)), client, pushed=True)
    except PageError as error:
        raise InvalidRequest(error.message) from None
    except RedirectError as refusal:
        raise refusal.error from None
    return request.scope
