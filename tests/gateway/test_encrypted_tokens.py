"""The gateway with decryption keys: a JWT encrypted to its audience is opened and checked as a
plain one, over real HTTP; a bad key file stops the start naming the setting."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import ECKey

from tests.gateway.conftest import gateway_config
from tests.guard.conftest import Keys
from tests.guard.forge import claims, sign
from tests.guard.servers import StubServer, asgi_server
from tokensmith.errors import ConfigError
from tokensmith.gateway import build_gateway
from tokensmith.gateway.config import parse_config
from tokensmith.jose.jwe import encrypt_jwt, encryption_key

KEY = ECKey.generate_key("P-256", parameters={"kid": "gw-enc"})


def test_the_gateway_opens_tokens_encrypted_to_it(
    stub_issuer: StubServer, upstream: str, keys: Keys, tmp_path: Path
) -> None:
    path = tmp_path / "enc.jwk"
    path.write_text(json.dumps(KEY.as_dict(private=True)))
    document = gateway_config(stub_issuer, upstream, tmp_path)
    document["authorization_server"]["decryption_keys"] = [str(path)]
    gateway = build_gateway(parse_config(document, tmp_path))
    sealed = encrypt_jwt(sign(keys.es, claims()), encryption_key(KEY.as_dict(private=False)))
    other = ECKey.generate_key("P-256", parameters={"kid": "gw-enc"})
    foreign = encrypt_jwt(sign(keys.es, claims()), encryption_key(other.as_dict(private=False)))
    with asgi_server(gateway) as base:
        ok = httpx.get(base + "/orders", headers={"authorization": f"Bearer {sealed}"})
        assert ok.status_code == 200, ok.text
        refused = httpx.get(base + "/orders", headers={"authorization": f"Bearer {foreign}"})
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_token"


def test_bad_decryption_keys_stop_the_gateway(stub_issuer: StubServer, tmp_path: Path) -> None:
    public = tmp_path / "public.jwk"
    public.write_text(json.dumps(KEY.as_dict(private=False)))
    document = gateway_config(stub_issuer, "http://127.0.0.1:1", tmp_path)
    for value in ([str(public)], [str(tmp_path / "missing.pem")], "not a list", [7]):
        document["authorization_server"]["decryption_keys"] = value
        with pytest.raises(ConfigError, match=r"authorization_server\.decryption_keys"):
            parse_config(document, tmp_path)
