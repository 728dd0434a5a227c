"""The validated authorization request, carried through the login and consent forms.

It travels sealed (AES-GCM under the master key, bound to its purpose) inside the form, so the
person's browser holds it without being able to read or alter it, and no table of half-finished
logins is needed. It expires after ``INTERACTION_TTL``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tokensmith.core.sealing import MasterKey, SealError
from tokensmith.core.secrets import b64url, b64url_decode
from tokensmith.oauth.authorization import AuthorizationRequest

__all__ = ["INTERACTION_TTL", "Interaction", "open_interaction", "seal_interaction"]

INTERACTION_TTL = 600
_CONTEXT = "interaction:v1"


@dataclass(frozen=True, slots=True)
class Interaction:
    request: AuthorizationRequest
    expires_at: int
    logged_in_at: int | None = None  # set once the person has logged in during this request


def seal_interaction(master: MasterKey, interaction: Interaction) -> str:
    payload = {
        "request": interaction.request.to_json(),
        "exp": interaction.expires_at,
        "login": interaction.logged_in_at,
    }
    return b64url(master.seal(json.dumps(payload).encode(), _CONTEXT))


def open_interaction(master: MasterKey, sealed: str | None, now: int) -> Interaction | None:
    """The interaction, or None if it is missing, altered, foreign or expired."""
    if not sealed or len(sealed) > 16384:
        return None
    try:
        payload = json.loads(master.unseal(b64url_decode(sealed), _CONTEXT))
        interaction = Interaction(
            AuthorizationRequest.from_json(payload["request"]),
            int(payload["exp"]),
            payload["login"],
        )
    except (SealError, ValueError, KeyError, TypeError):
        return None
    return interaction if interaction.expires_at > now else None
