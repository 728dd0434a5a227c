"""The identity a validated credential stands for, handed to the application's handler."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CredentialKind", "Principal"]

CredentialKind = Literal["jwt", "opaque", "api_key"]


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
