"""What a client's token exchanges (RFC 8693) may ask for: its ``token_exchange`` policy.

RFC 8693 §5 leaves to the authorization server which subjects, actors and targets a client may
exchange for; Tokensmith makes each of them an explicit allowlist on the client, stored as JSON
(``Client.token_exchange``) and checked at registration (``parse_policy``), so a bad policy never
reaches /token. With no policy, a client that lists the grant gets the narrowest one: it may
exchange access tokens issued to itself, for the same audience or a part of it, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tokensmith.core.txn_tokens import TXN_TOKEN_TYPE_URN

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "API_KEY_TOKEN_TYPE",
    "ID_TOKEN_TYPE",
    "JWT_TOKEN_TYPE",
    "SUBJECT_KINDS",
    "TOKEN_EXCHANGE_GRANT",
    "TXN_TOKEN_TYPE_URN",
    "ExchangePolicy",
    "parse_policy",
]

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # RFC 8693 §3
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
# Ours, for a Tokensmith API key as the subject (RFC 8693 §3 allows other URIs).
API_KEY_TOKEN_TYPE = "urn:tokensmith:params:oauth:token-type:api-key"

# The short names a policy uses for the token types it accepts as subject.
SUBJECT_KINDS: Mapping[str, str] = {
    "access_token": ACCESS_TOKEN_TYPE,
    "id_token": ID_TOKEN_TYPE,
    "api_key": API_KEY_TOKEN_TYPE,
}
_MAX_ENTRIES = 32
_KEYS = frozenset(
    {
        "audiences",
        "accept_audiences",
        "subject_types",
        "actors",
        "allow_impersonation",
        "txn_tokens",
    }
)


@dataclass(frozen=True, slots=True)
class ExchangePolicy:
    # Targets (``audience``/``resource``) it may name besides a narrowing of the subject's own.
    audiences: tuple[str, ...] = ()
    # Whose tokens it may present, by their audience (a resource server exchanging the tokens
    # sent to it names itself); tokens issued to the client itself are always acceptable.
    accept_audiences: tuple[str, ...] = ()
    subject_types: tuple[str, ...] = ("access_token",)
    # The subjects allowed to act (the actor token's ``sub``); None: any acceptable actor token.
    actors: tuple[str, ...] | None = None
    # False: delegation only, every exchange names an actor.
    allow_impersonation: bool = True
    # May ask for transaction tokens (draft-ietf-oauth-transaction-tokens): a gateway's right.
    txn_tokens: bool = False

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> ExchangePolicy:
        """The policy a stored client has (validated when it was registered)."""
        return parse_policy(data) if data is not None else cls()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "audiences": list(self.audiences),
            "accept_audiences": list(self.accept_audiences),
            "subject_types": list(self.subject_types),
            "allow_impersonation": self.allow_impersonation,
            "txn_tokens": self.txn_tokens,
        }
        if self.actors is not None:
            data["actors"] = list(self.actors)
        return data


def parse_policy(data: Mapping[str, Any]) -> ExchangePolicy:
    """The policy, or ValueError naming what is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError("a token exchange policy is a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"token exchange policy: unknown member {unknown[0][:40]!r}")
    types = _strings(data, "subject_types", ("access_token",))
    bad = [t for t in types if t not in SUBJECT_KINDS]
    if bad or not types:
        raise ValueError(f"token exchange subject types are {', '.join(SUBJECT_KINDS)}")
    actors = _strings(data, "actors", None) if "actors" in data else None
    policy = ExchangePolicy(
        audiences=tuple(_target(a) for a in _strings(data, "audiences", ())),
        accept_audiences=tuple(_target(a) for a in _strings(data, "accept_audiences", ())),
        subject_types=tuple(dict.fromkeys(types)),
        actors=actors,
        allow_impersonation=_flag(data, "allow_impersonation", True),
        txn_tokens=_flag(data, "txn_tokens", False),
    )
    if not policy.allow_impersonation and policy.actors == ():
        raise ValueError("a delegation-only policy with no allowed actor allows nothing")
    return policy


def _strings(data: Mapping[str, Any], name: str, default: Any) -> Any:
    value = data.get(name, default)
    if value is default:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"token exchange policy: {name} is a list of strings")
    if len(value) > _MAX_ENTRIES or any(len(v) > 512 for v in value):
        raise ValueError(f"token exchange policy: {name} is too long")
    return tuple(dict.fromkeys(value))


def _flag(data: Mapping[str, Any], name: str, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"token exchange policy: {name} is true or false")
    return value


def _target(uri: str) -> str:
    # The same rule as a client's resources (RFC 8707 §2): absolute, no fragment.
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.netloc or "#" in uri:
        raise ValueError(f"audience {uri[:80]!r} is not an absolute http(s) URI without a fragment")
    if any(ord(c) <= 0x20 for c in uri):
        raise ValueError("an audience has no spaces or control characters")
    return uri
