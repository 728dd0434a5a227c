"""settings.py: one clear line per bad setting, and production refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokensmith.core.sealing import generate_master_key
from tokensmith.errors import ConfigError
from tokensmith.settings import load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("TOKENSMITH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_a_working_development_server() -> None:
    settings = load_settings()
    assert settings.mode == "development"
    assert settings.effective_database_url == "sqlite:///var/tokensmith.db"
    assert settings.signing_alg == "ES256"
    assert settings.access_token_ttl == 300


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "TOKENSMITH_ACCESS_TOKEN_TTL=10m\nTOKENSMITH_SIGNING_ALG=Ed25519\n"
    )
    monkeypatch.setenv("TOKENSMITH_ISSUER", "https://auth.example.com/")
    settings = load_settings()
    assert settings.access_token_ttl == 600
    assert settings.signing_alg == "Ed25519"
    assert settings.issuer == "https://auth.example.com"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("TOKENSMITH_MODE", "prod", "TOKENSMITH_MODE"),
        ("TOKENSMITH_ISSUER", "ftp://x", "TOKENSMITH_ISSUER"),
        ("TOKENSMITH_ISSUER", "https://a.example/?q=1", "no query"),
        ("TOKENSMITH_ISSUER", "https://a.example/#f", "no query and no fragment"),
        ("TOKENSMITH_SIGNING_ALG", "HS256", "TOKENSMITH_SIGNING_ALG"),
        ("TOKENSMITH_SIGNING_ALG", "none", "TOKENSMITH_SIGNING_ALG"),
        ("TOKENSMITH_ACCESS_TOKEN_TTL", "soon", "TOKENSMITH_ACCESS_TOKEN_TTL"),
        ("TOKENSMITH_KEY_ROTATION_PERIOD", "5m", "at least 1h"),
        ("TOKENSMITH_DATABASE_POOL_SIZE", "0", "TOKENSMITH_DATABASE_POOL_SIZE"),
        ("TOKENSMITH_ACCESS_TOKEN_TTL", "2h", "exceeds TOKENSMITH_TOKEN_MAX_LIFETIME"),
    ],
)
def test_malformed_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_production_needs_a_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENSMITH_MODE", "production")
    monkeypatch.setenv("TOKENSMITH_ISSUER", "https://auth.example.com")
    with pytest.raises(ConfigError, match="TOKENSMITH_MASTER_KEY"):
        load_settings()


@pytest.mark.parametrize("issuer", ["http://auth.example.com", "http://10.0.0.5:8000"])
def test_production_refuses_plain_http_issuer(monkeypatch: pytest.MonkeyPatch, issuer: str) -> None:
    monkeypatch.setenv("TOKENSMITH_MODE", "production")
    monkeypatch.setenv("TOKENSMITH_MASTER_KEY", generate_master_key())
    monkeypatch.setenv("TOKENSMITH_ISSUER", issuer)
    with pytest.raises(ConfigError, match="must be https"):
        load_settings()


@pytest.mark.parametrize(
    "issuer", ["http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"]
)
def test_production_allows_loopback_http(monkeypatch: pytest.MonkeyPatch, issuer: str) -> None:
    monkeypatch.setenv("TOKENSMITH_MODE", "production")
    monkeypatch.setenv("TOKENSMITH_MASTER_KEY", generate_master_key())
    monkeypatch.setenv("TOKENSMITH_ISSUER", issuer)
    assert load_settings().mode == "production"


def test_production_refuses_in_memory_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENSMITH_MODE", "production")
    monkeypatch.setenv("TOKENSMITH_MASTER_KEY", generate_master_key())
    monkeypatch.setenv("TOKENSMITH_ISSUER", "https://auth.example.com")
    monkeypatch.setenv("TOKENSMITH_DATABASE_URL", "sqlite:///:memory:")
    with pytest.raises(ConfigError, match="in-memory"):
        load_settings()


def test_production_refuses_what_is_safe_only_for_measurement_or_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOKENSMITH_MODE", "production")
    monkeypatch.setenv("TOKENSMITH_MASTER_KEY", generate_master_key())
    monkeypatch.setenv("TOKENSMITH_ISSUER", "https://auth.example.com")
    monkeypatch.setenv("TOKENSMITH_AUDIT_REQUEST_EVENTS", "false")
    with pytest.raises(ConfigError, match="AUDIT_REQUEST_EVENTS"):
        load_settings()
    monkeypatch.delenv("TOKENSMITH_AUDIT_REQUEST_EVENTS")
    monkeypatch.setenv("TOKENSMITH_WEBHOOK_URLS", "http://hooks.example.com/x")
    monkeypatch.setenv("TOKENSMITH_WEBHOOK_SECRET", "s")
    with pytest.raises(ConfigError, match="WEBHOOK_URLS must be https"):
        load_settings()
    monkeypatch.setenv(
        "TOKENSMITH_WEBHOOK_URLS", "https://hooks.example.com/x http://127.0.0.1:9/x"
    )
    assert load_settings().webhooks == ("https://hooks.example.com/x", "http://127.0.0.1:9/x")


def test_webhooks_need_a_secret_and_real_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENSMITH_WEBHOOK_URLS", "https://hooks.example.com/x")
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET is required"):
        load_settings()
    monkeypatch.setenv("TOKENSMITH_WEBHOOK_URLS", "ftp://x")
    with pytest.raises(ConfigError, match="TOKENSMITH_WEBHOOK_URLS"):
        load_settings()


def test_the_api_key_environment_follows_the_mode() -> None:
    assert load_settings().key_env == "test"
    assert load_settings(api_key_env="live").key_env == "live"
