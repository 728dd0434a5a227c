"""The start-up probe of the gateway's introspection credentials: refused stops the start with
the setting's name; an issuer that cannot tell is a warning and the start goes on."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from tests.gateway.conftest import gateway_config
from tests.guard.servers import Answer, StubServer
from tests.support import refused_port
from tokensmith.errors import ConfigError
from tokensmith.gateway.config import parse_config
from tokensmith.gateway.probe import probe_introspection


def probe(stub: StubServer, tmp_path: Path, answer: Answer) -> bool:
    stub.routes["/introspect"] = answer
    return probe_introspection(
        parse_config(gateway_config(stub, "http://127.0.0.1:1", tmp_path), tmp_path)
    )


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_stop_the_start(tmp_path: Path, status: int) -> None:
    with StubServer() as stub, pytest.raises(ConfigError) as refused:
        probe(stub, tmp_path, (status, {}, {"error": "invalid_client"}))
    message = str(refused.value)
    assert "authorization_server.client_id / client_secret" in message
    assert f"({status})" in message and "\n" not in message
    assert "gateway-secret" not in message


def test_accepted_credentials_pass_with_a_made_up_token(tmp_path: Path) -> None:
    with StubServer() as stub:
        assert probe(stub, tmp_path, (200, {}, {"active": False})) is True
        _, headers, body = stub.requests[-1]
    token = parse_qs(body.decode())["token"][0]
    assert token.startswith("tsat_gateway-startup-probe-")
    basic = base64.b64decode(headers["authorization"].removeprefix("Basic ")).decode()
    assert basic == "gateway:gateway-secret"


@pytest.mark.parametrize("status", [500, 503, 404])
def test_an_issuer_that_cannot_tell_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    caplog.set_level(logging.WARNING, logger="tokensmith.gateway")
    with StubServer() as stub:
        assert probe(stub, tmp_path, (status, {}, {})) is False
    assert any("introspection probe failed" in r.getMessage() for r in caplog.records)


def test_an_unreachable_issuer_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tokensmith.gateway")
    gone = type("Gone", (), {"base_url": f"http://127.0.0.1:{refused_port()}"})()
    config = parse_config(gateway_config(gone, "http://127.0.0.1:1", tmp_path), tmp_path)
    assert probe_introspection(config) is False
    warning = next(r for r in caplog.records if "introspection probe failed" in r.getMessage())
    assert "unreachable" in str(warning.__dict__["problem"])
