"""The identity a validated credential stands for, handed to the application's handler."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CredentialKind", "Principal", "new_principal"]

# txn_token: a transaction token (draft-ietf-oauth-transaction-tokens, guard/txn_tokens.py).
CredentialKind = Literal["jwt", "opaque", "api_key", "txn_token"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling (``subject``), through which client or key, with which scopes."""

    subject: str
    client_id: str | None
    scopes: frozenset[str]
    audience: tuple[str, ...]
    issuer: str | None
    expires_at: int | None
    token_id: str | None
    kind: CredentialKind
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def has_scopes(self, needed: Iterable[str]) -> bool:
        return self.scopes.issuperset(needed)

    @property
    def scope(self) -> str:
        return " ".join(sorted(self.scopes))

    # A transaction token's own claims, read from ``claims`` (None for other credentials): no
    # slots of their own, so the validators' hot path builds the same nine fields.
    @property
    def txn(self) -> str | None:
        """The transaction id every service of one call chain sees."""
        value = self.claims.get("txn") if self.kind == "txn_token" else None
        return value if isinstance(value, str) else None

    @property
    def sub_id(self) -> Mapping[str, Any] | None:
        """The subject as an RFC 9493 subject identifier (``format`` and its members)."""
        return self._txn_object("sub_id")

    @property
    def purp(self) -> str | None:
        """What the transaction is for, as the token's issuer stated it."""
        value = self.claims.get("purp") if self.kind == "txn_token" else None
        return value if isinstance(value, str) else None

    @property
    def azd(self) -> Mapping[str, Any] | None:
        """The authorization context: the outside client, its scope."""
        return self._txn_object("azd")

    @property
    def rctx(self) -> Mapping[str, Any] | None:
        """The requester context: ``req_ip``, ``authn``, ``req_wl``."""
        return self._txn_object("rctx")

    def _txn_object(self, name: str) -> Mapping[str, Any] | None:
        value = self.claims.get(name) if self.kind == "txn_token" else None
        return value if isinstance(value, dict) else None

    @property
    def dpop_jkt(self) -> str | None:
        """The key thumbprint the token is bound to (RFC 9449 §6: ``cnf.jkt``), if any."""
        cnf = self.claims.get("cnf")
        if cnf is None:
            return None
        jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
        if not isinstance(jkt, str) or not jkt:
            # A confirmation we cannot honour must not read as "unbound".
            return ""
        return jkt


# The frozen dataclass's __init__ writes each field through object.__setattr__ (1.2 µs for the
# nine); the validators' first-sight path writes the slots directly (0.6 µs): the same frozen
# Principal, equal to the one __init__ builds (tests/guard/test_principal.py).
def _setter(name: str) -> Any:
    return Principal.__dict__[name].__set__  # the slot's member descriptor


_subject, _client_id, _scopes = _setter("subject"), _setter("client_id"), _setter("scopes")
_audience, _issuer, _expires_at = _setter("audience"), _setter("issuer"), _setter("expires_at")
_token_id, _kind, _claims = _setter("token_id"), _setter("kind"), _setter("claims")
if len(Principal.__slots__) != 9:
    raise RuntimeError("new_principal must write every field of Principal")  # pragma: no cover
_new = object.__new__


def new_principal(
    subject: str,
    client_id: str | None,
    scopes: frozenset[str],
    audience: tuple[str, ...],
    issuer: str | None,
    expires_at: int | None,
    token_id: str | None,
    kind: CredentialKind,
    claims: Mapping[str, Any],
) -> Principal:
    """``Principal(...)`` with every field given, built faster; for the validators' hot paths."""
    principal: Principal = _new(Principal)
    _subject(principal, subject)
    _client_id(principal, client_id)
    _scopes(principal, scopes)
    _audience(principal, audience)
    _issuer(principal, issuer)
    _expires_at(principal, expires_at)
    _token_id(principal, token_id)
    _kind(principal, kind)
    _claims(principal, claims)
    return principal
