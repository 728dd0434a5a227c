"""The HTTP scenarios: what one request of each looks like on a given server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from bench.fixtures import REDIRECT_URI, Fixtures
from bench.load import Request
from bench.procs import Group

__all__ = ["SCENARIOS", "Scenario", "Server"]


class Server(Protocol):
    name: str
    base_url: str
    token_path: str
    introspect_path: str
    introspect_token: str
    fixtures: Fixtures
    group: Group | None

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    build: Callable[[Server, int], Request]  # (server, round; 0 is the warm-up) -> request


def _cc(fmt: str) -> Callable[[Server, int], Request]:
    def build(server: Server, _round: int) -> Request:
        fx = server.fixtures
        client = fx.jwt_client if fmt == "jwt" else fx.opaque_client
        return Request(
            server.token_path,
            "grant_type=client_credentials&scope=api%3Aread",
            {"Authorization": client.basic},
        )

    return build


def _introspect(server: Server, _round: int) -> Request:
    client = server.fixtures.opaque_client
    body = "token=" + quote(server.introspect_token, safe="")
    return Request(server.introspect_path, body, {"Authorization": client.basic})


def _code(server: Server, round_no: int) -> Request:
    fx = server.fixtures
    body = (
        "grant_type=authorization_code&code={value}"
        f"&redirect_uri={quote(REDIRECT_URI, safe='')}&code_verifier={fx.code_verifier}"
    )
    return Request(
        server.token_path, body, {"Authorization": fx.web_client.basic}, _file(fx.codes, round_no)
    )


def _refresh(server: Server, round_no: int) -> Request:
    fx = server.fixtures
    return Request(
        server.token_path,
        "grant_type=refresh_token&refresh_token={value}",
        {"Authorization": fx.web_client.basic},
        _file(fx.refresh, round_no),
    )


def _file(pools: tuple[Path, ...], round_no: int) -> Path:
    return pools[min(round_no, len(pools) - 1)]


SCENARIOS = {
    s.key: s
    for s in (
        Scenario("cc_jwt", "token, client_credentials, ES256 JWT", _cc("jwt")),
        Scenario("cc_opaque", "token, client_credentials, opaque", _cc("opaque")),
        Scenario("introspect", "introspection of an opaque token", _introspect),
        Scenario("code", "authorization_code exchange (+refresh, id_token)", _code),
        Scenario("refresh", "refresh_token rotation (+id_token)", _refresh),
    )
}
