"""The validation core every adapter shares: credential in, typed principal (or refusal) out.

No framework here: the ASGI, FastAPI and Flask adapters read three strings from their request,
call ``authenticate`` (async) or ``authenticate_blocking`` (WSGI threads), then ``require``.
JWTs are validated locally against the JWKS; other bearer tokens go to introspection; API keys
to the key verifier. A credential kind without a configured checker is refused, never passed.

A token bound to a DPoP key (``cnf.jkt``, RFC 9449 §6) counts only as ``Authorization: DPoP``
with a proof for this request (``guard/dpop.py``), and never as Bearer (§7.2); a token that is
not bound is refused in the DPoP scheme, which would claim a binding it does not have. Without a
``dpop`` policy the guard takes no DPoP at all, and still refuses bound tokens.

Every path ends in the same audience rule (``guard/audience.py``, SECURITY.md case 60): the
principal must name one of ``audiences``, which default to the JWT validator's. A guard that
introspects must know its audience: without one it refuses to start, never accepts any.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokensmith.guard.apikeys import ApiKeyChecker
from tokensmith.guard.audience import check_audience
from tokensmith.guard.credentials import Credential, read_credential
from tokensmith.guard.decryption import DecryptionSource, load_decryption_keys
from tokensmith.guard.dpop import DpopPolicy, ProofContext
from tokensmith.guard.errors import (
    GuardError,
    InsufficientScope,
    InvalidToken,
    ServiceUnavailable,
    UnknownKeyId,
)
from tokensmith.guard.introspection import Introspector
from tokensmith.guard.jwks import JwksCache
from tokensmith.guard.jwt import JwtValidator
from tokensmith.guard.principal import Principal
from tokensmith.guard.txn_tokens import DEFAULT_MAX_LIFETIME, TxnTokenValidator

__all__ = ["Guard"]

_JWS_DOTS, _JWE_DOTS = 2, 4  # compact serialisations: RFC 7515 §7.1, RFC 7516 §7.1


class Guard:
    def __init__(
        self,
        *,
        jwt: JwtValidator | None = None,
        jwks: JwksCache | None = None,
        introspector: Introspector | None = None,
        api_keys: ApiKeyChecker | None = None,
        audiences: Iterable[str] | None = None,
        realm: str = "tokensmith",
        dpop: DpopPolicy | None = None,
    ) -> None:
        if jwt is None and introspector is None and api_keys is None:
            raise ValueError("a guard needs at least one way to check a credential")
        self.audiences = _audiences(audiences, jwt, introspector)
        self.dpop = dpop
        self.dpop_algs = dpop.algorithms if dpop is not None else ()
        self.jwt = jwt
        self.jwks = jwks
        self.introspector = introspector
        self.api_keys = api_keys
        self.realm = realm
        if jwks is not None and jwt is not None:
            jwks.on_change = jwt.forget

    @classmethod
    def for_issuer(
        cls,
        issuer: str,
        *,
        audience: str | Iterable[str],
        jwks_uri: str | None = None,
        leeway: int = 30,
        unknown_kid_cooldown: float = 30.0,
        realm: str = "tokensmith",
        decryption_keys: Iterable[DecryptionSource] = (),
        require_encryption: bool = False,
        dpop: DpopPolicy | None = None,
    ) -> Guard:
        """A guard for JWT access tokens of one Tokensmith issuer (JWKS at ``{issuer}/jwks``).

        ``decryption_keys``: the resource's private keys (JWK, JWKS, PEM, or a file of one) for
        access tokens the issuer encrypts to it; ``require_encryption`` refuses plain JWTs."""
        audiences = (audience,) if isinstance(audience, str) else tuple(audience)
        jwks = JwksCache(
            jwks_uri or issuer.rstrip("/") + "/jwks", unknown_kid_cooldown=unknown_kid_cooldown
        )
        validator = JwtValidator(
            jwks,
            issuer=issuer,
            audiences=audiences,
            leeway=leeway,
            decryption_keys=load_decryption_keys(decryption_keys),
            require_encryption=require_encryption,
        )
        return cls(jwt=validator, jwks=jwks, realm=realm, dpop=dpop)

    @classmethod
    def for_transaction_tokens(
        cls,
        issuer: str,
        *,
        trust_domain: str | Iterable[str],
        jwks_uri: str | None = None,
        max_lifetime: int = DEFAULT_MAX_LIFETIME,
        leeway: int = 5,
        unknown_kid_cooldown: float = 30.0,
        realm: str = "tokensmith",
    ) -> Guard:
        """A guard for the transaction tokens of one issuer (guard/txn_tokens.py): the
        gateway's (JWKS at ``/.well-known/jwks.json``) or Tokensmith's (``/jwks``, the default).
        It accepts nothing else: no access token, no API key."""
        jwks = JwksCache(
            jwks_uri or issuer.rstrip("/") + "/jwks", unknown_kid_cooldown=unknown_kid_cooldown
        )
        validator = TxnTokenValidator(
            jwks, issuer=issuer, trust_domain=trust_domain, max_lifetime=max_lifetime, leeway=leeway
        )
        return cls(jwt=validator, jwks=jwks, realm=realm)

    def read(self, authorization: str | None, api_key: str | None, query: str) -> Credential:
        try:
            return read_credential(authorization, api_key, query)
        except GuardError as error:
            raise self.marked(error) from None

    async def authenticate(
        self,
        credential: Credential,
        source_ip: str | None = None,
        request: ProofContext | None = None,
    ) -> Principal:
        """``request`` carries what a DPoP check needs; without it a DPoP token is refused."""
        try:
            self._precheck(credential, request)
            principal = await self._authenticate(credential, source_ip)
            return self._bound(self.require_audience(principal), credential, request)
        except GuardError as error:
            raise self.marked(error, credential) from None

    def authenticate_blocking(
        self,
        credential: Credential,
        source_ip: str | None = None,
        request: ProofContext | None = None,
    ) -> Principal:
        """The same decision for threaded WSGI servers; I/O blocks only the calling thread."""
        try:
            self._precheck(credential, request)
            principal = self._authenticate_blocking(credential, source_ip)
            return self._bound(self.require_audience(principal), credential, request)
        except GuardError as error:
            raise self.marked(error, credential) from None

    def marked(self, error: GuardError, credential: Credential | None = None) -> GuardError:
        """``error`` with this guard's DPoP algorithms, in the scheme the credential came in."""
        error.dpop_algs = self.dpop_algs
        if credential is not None and credential.kind == "dpop" and self.dpop is not None:
            error.scheme = "DPoP"
        return error

    def _precheck(self, credential: Credential, request: ProofContext | None) -> None:
        """What needs no token check: DPoP offered at all, and one proof with the request."""
        if credential.kind != "dpop":
            return
        if self.dpop is None:
            raise InvalidToken("DPoP is not accepted here; use the Bearer scheme")
        if request is None:
            raise ServiceUnavailable("this adapter passes no request; DPoP cannot be checked")
        self.dpop.require_one(request.proofs)

    def _bound(
        self, principal: Principal, credential: Credential, request: ProofContext | None
    ) -> Principal:
        """RFC 9449 §7: the binding of the token and the scheme it came in must agree."""
        jkt = principal.dpop_jkt
        if credential.kind == "api_key":
            return principal
        if credential.kind == "bearer":
            if jkt is not None:
                raise InvalidToken("this token is bound to a DPoP key; send it as DPoP")
            return principal
        if jkt is None:
            raise InvalidToken("this token is not DPoP-bound; send it as Bearer")
        if self.dpop is None or request is None:  # _precheck refused these already
            raise ServiceUnavailable("DPoP cannot be checked here")
        self.dpop.check(credential.value, jkt, request)
        return principal

    def require_audience(
        self, principal: Principal, audiences: Iterable[str] | None = None
    ) -> Principal:
        """The principal if it names one of ``audiences`` (default: the guard's); else 401."""
        return check_audience(principal, self.audiences if audiences is None else audiences)

    async def _authenticate(self, credential: Credential, source_ip: str | None) -> Principal:
        if credential.kind == "api_key":
            if self.api_keys is None:
                raise InvalidToken("API keys are not accepted here")
            return await self.api_keys.check(credential.value, source_ip)
        token = credential.value
        if self.jwt is not None and self._locally(token):
            return await self._validate_jwt(self.jwt, token)
        if self.introspector is not None:
            return await self.introspector.introspect(token)
        raise InvalidToken("the access token is not a signed JWT")

    def _authenticate_blocking(self, credential: Credential, source_ip: str | None) -> Principal:
        if credential.kind == "api_key":
            if self.api_keys is None:
                raise InvalidToken("API keys are not accepted here")
            return self.api_keys.check_blocking(credential.value, source_ip)
        token = credential.value
        if self.jwt is not None and self._locally(token):
            return self._validate_jwt_blocking(self.jwt, token)
        if self.introspector is not None:
            return self.introspector.introspect_sync(token)
        raise InvalidToken("the access token is not a signed JWT")

    def _locally(self, token: str) -> bool:
        """A JWS is checked here; a JWE too when we hold its keys. One we cannot open goes to
        introspection, which knows it by its record, if there is one (else it is refused)."""
        dots = token.count(".")
        if dots == _JWS_DOTS:
            return True
        jwt = self.jwt
        return (
            dots == _JWE_DOTS
            and jwt is not None
            and (bool(jwt.decryption_keys) or self.introspector is None)
        )

    def require(self, principal: Principal, scopes: Iterable[str]) -> Principal:
        needed = frozenset(scopes)
        if not principal.scopes.issuperset(needed):
            error = self.marked(InsufficientScope(needed))
            if principal.dpop_jkt is not None and self.dpop is not None:
                error.scheme = "DPoP"  # it came in as DPoP, or it would not have passed
            raise error
        return principal

    async def aclose(self) -> None:
        for check in (self.introspector, self.api_keys):
            close = getattr(check, "aclose", None)
            if close is not None:
                await close()

    async def _validate_jwt(self, validator: JwtValidator, token: str) -> Principal:
        jwks = self.jwks
        if jwks is not None:
            if not jwks.loaded:
                await jwks.ensure_loaded()
            elif jwks.is_stale():
                jwks.refresh_in_background()
        try:
            return validator.validate(token)
        except UnknownKeyId:
            if jwks is None or not _may_refetch(jwks):
                raise
        # The issuer may have rotated: one refetch per cool-down. If it cannot be read, we do
        # not know whether the key is real, so the answer is 503, not 401.
        await jwks.refresh()
        return validator.validate(token)

    def _validate_jwt_blocking(self, validator: JwtValidator, token: str) -> Principal:
        jwks = self.jwks
        if jwks is not None:
            if not jwks.loaded:
                jwks.ensure_loaded_sync()
            elif jwks.is_stale():
                jwks.refresh_in_thread()
        try:
            return validator.validate(token)
        except UnknownKeyId:
            if jwks is None or not _may_refetch(jwks):
                raise
        jwks.refresh_sync()  # as above: ServiceUnavailable (503) if the issuer cannot be read
        return validator.validate(token)


def _audiences(
    given: Iterable[str] | None, jwt: JwtValidator | None, introspector: Introspector | None
) -> frozenset[str]:
    audiences = frozenset(given) if given is not None else frozenset()
    if not audiences and jwt is not None:
        audiences = jwt.audiences
    if not audiences and introspector is not None:
        audiences = introspector.audiences
    if not audiences and introspector is not None:
        # Introspection says "active" for a token of any audience: we must know ours.
        raise ValueError("a guard that introspects needs audiences=: the resource it protects")
    return audiences


def _may_refetch(jwks: JwksCache) -> bool:
    """Whether an unknown kid may refetch now; during the cool-down after a failed fetch the
    key set is as unknown as the issuer's state, so that is 503 too (never a 401 by default)."""
    if jwks.may_refetch_for_unknown_kid():
        return True
    if jwks.last_fetch_failed:
        raise ServiceUnavailable("the issuer's signing keys cannot be read right now")
    return False
