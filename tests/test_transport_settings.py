"""Transport settings: bad values stop the start with the variable's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokensmith.errors import ConfigError
from tokensmith.settings import load_settings


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"trusted_proxies": "10.0.0.0/8 bogus"}, "TOKENSMITH_TRUSTED_PROXIES: 'bogus'"),
        ({"trusted_proxies": "10.0.0.0/33"}, "TOKENSMITH_TRUSTED_PROXIES"),
        ({"proxy_header": "x-real-ip"}, "TOKENSMITH_PROXY_HEADER"),
        ({"metrics_token": "too-short"}, "TOKENSMITH_METRICS_TOKEN: must be at least 16"),
        ({"max_header_bytes": 100}, "TOKENSMITH_MAX_HEADER_BYTES"),
        ({"header_timeout": 0}, "TOKENSMITH_HEADER_TIMEOUT"),
        ({"body_idle_timeout": -1}, "TOKENSMITH_BODY_IDLE_TIMEOUT"),
        ({"tls_cert": Path("cert.pem")}, "TOKENSMITH_TLS_CERT and TOKENSMITH_TLS_KEY"),
        ({"tls_key": Path("key.pem")}, "TOKENSMITH_TLS_CERT and TOKENSMITH_TLS_KEY"),
    ],
)
def test_bad_transport_settings_are_named(
    tmp_path: Path, overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError, match=named.replace("(", r"\(")):
        load_settings(var_dir=tmp_path, **overrides)


def test_proxies_parse_into_networks(tmp_path: Path) -> None:
    settings = load_settings(var_dir=tmp_path, trusted_proxies="10.0.0.0/8, ::1 192.0.2.7")
    assert [str(n) for n in settings.proxies.networks] == ["10.0.0.0/8", "::1/128", "192.0.2.7/32"]
    assert settings.proxies.header == "x-forwarded-for"
    assert load_settings(var_dir=tmp_path).proxies.networks == ()
