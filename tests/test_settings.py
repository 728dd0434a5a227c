"""settings.py: one clear line per bad setting, production refusals, and unknown variables."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from tests.support import REPO
from tokensmith import settings as settings_module
from tokensmith.core.sealing import generate_master_key
from tokensmith.errors import ConfigError
from tokensmith.settings import load_settings, nearest_setting, unknown_variables


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
        ("TOKENSMITH_DEVICE_POLL_INTERVAL", "0", "TOKENSMITH_DEVICE_POLL_INTERVAL"),
        ("TOKENSMITH_DEVICE_CODE_TTL", "2h", "TOKENSMITH_DEVICE_CODE_TTL"),
        ("TOKENSMITH_CLI_CLIENT", "perhaps", "TOKENSMITH_CLI_CLIENT"),
        ("TOKENSMITH_LOCKOUT_USER_CODE_FAILURES", "0", "TOKENSMITH_LOCKOUT_USER_CODE_FAILURES"),
        ("TOKENSMITH_PAR_TTL", "61", "TOKENSMITH_PAR_TTL"),  # RFC 9126 request_uri: 60 s at most
        ("TOKENSMITH_PAR_TTL", "0", "TOKENSMITH_PAR_TTL"),
        ("TOKENSMITH_REQUIRE_PAR", "perhaps", "TOKENSMITH_REQUIRE_PAR"),
        ("TOKENSMITH_DATABASE_TIMEOUT", "0", "TOKENSMITH_DATABASE_TIMEOUT"),
        ("TOKENSMITH_DATABASE_TIMEOUT", "301", "TOKENSMITH_DATABASE_TIMEOUT"),
        ("TOKENSMITH_DATABASE_TIMEOUT", "soon", "TOKENSMITH_DATABASE_TIMEOUT"),
        ("TOKENSMITH_REFRESH_GRACE", "3m", "TOKENSMITH_REFRESH_GRACE"),
        ("TOKENSMITH_REFRESH_GRACE", "-1", "TOKENSMITH_REFRESH_GRACE"),
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


# -- unknown TOKENSMITH_* variables -------------------------------------------------------------


@pytest.fixture
def warned(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """A fresh memory of the names this process has warned about."""
    fresh: set[str] = set()
    monkeypatch.setattr(settings_module, "_warned", fresh)
    return fresh


def unknown_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "variable", None) is not None]


def test_development_warns_once_naming_the_nearest_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, warned: set[str]
) -> None:
    monkeypatch.setenv("TOKENSMITH_DATABSE_URL", "sqlite:///elsewhere.db")
    with caplog.at_level(logging.WARNING, logger="tokensmith.settings"):
        settings = load_settings()
        load_settings()  # `serve` reads the settings twice: still one warning
    assert settings.database_url == ""  # ignored, as the warning says
    [record] = unknown_warnings(caplog)
    assert record.levelno == logging.WARNING
    assert record.variable == "TOKENSMITH_DATABSE_URL"  # type: ignore[attr-defined]
    assert record.nearest_setting == "TOKENSMITH_DATABASE_URL"  # type: ignore[attr-defined]
    assert "did you mean TOKENSMITH_DATABASE_URL?" in record.getMessage()


def test_production_refuses_an_unknown_variable_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOKENSMITH_MODE", "production")
    monkeypatch.setenv("TOKENSMITH_ISSUER", "https://auth.example.com")
    monkeypatch.setenv("TOKENSMITH_MASTER_KEY", generate_master_key())
    monkeypatch.setenv("TOKENSMITH_ACCES_TOKEN_TTL", "10m")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "TOKENSMITH_ACCES_TOKEN_TTL is not a Tokensmith setting "
        "(did you mean TOKENSMITH_ACCESS_TOKEN_TTL?)"
    )


def test_the_typo_is_reported_before_what_it_left_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENSMITH_MODE", "production")
    monkeypatch.setenv("TOKENSMITH_ISSUER", "https://auth.example.com")
    monkeypatch.setenv("TOKENSMITH_MASTER_KY", generate_master_key())
    monkeypatch.setenv("TOKENSMITH_FROBNICATE", "1")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("TOKENSMITH_FROBNICATE is not a Tokensmith setting")
    assert "see docs/configuration.md" in message  # nothing is close to it
    assert message.endswith("(and 1 more)") and "\n" not in message


def test_a_typo_in_the_dotenv_file_counts_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, warned: set[str]
) -> None:
    (tmp_path / ".env").write_text("TOKENSMITH_SIGNNG_ALG=Ed25519\n")
    with caplog.at_level(logging.WARNING, logger="tokensmith.settings"):
        load_settings()
    [record] = unknown_warnings(caplog)
    assert record.nearest_setting == "TOKENSMITH_SIGNING_ALG"  # type: ignore[attr-defined]


def test_worker_processes_do_not_repeat_the_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, warned: set[str]
) -> None:
    monkeypatch.setenv("TOKENSMITH_LOG_LEVLE", "DEBUG")
    with caplog.at_level(logging.WARNING, logger="tokensmith.settings"):
        load_settings(warn_unknown=False)
    assert unknown_warnings(caplog) == []
    monkeypatch.setenv("TOKENSMITH_MODE", "production")
    monkeypatch.setenv("TOKENSMITH_ISSUER", "https://auth.example.com")
    monkeypatch.setenv("TOKENSMITH_MASTER_KEY", generate_master_key())
    with pytest.raises(ConfigError, match="TOKENSMITH_LOG_LEVLE"):
        load_settings(warn_unknown=False)  # a refusal is never silenced


def test_what_counts_as_unknown() -> None:
    assert unknown_variables(
        [
            "TOKENSMITH_MODE",
            "tokensmith_issuer",  # pydantic-settings reads names case-insensitively
            "TOKENSMITH_TEST_POSTGRES",  # the test suite's own
            "TOKENSMITH_BENCH_CACHE",  # the bench's own
            "PATH",
            "TOKENSMITH_MODES",
            "tokensmith_issuers",
        ]
    ) == ["TOKENSMITH_MODES", "tokensmith_issuers"]
    assert nearest_setting("TOKENSMITH_REDIS_PREFIX") == "TOKENSMITH_REDIS_KEY_PREFIX"
    assert nearest_setting("TOKENSMITH_XYZZY") is None


def test_every_variable_the_project_names_is_a_setting_or_reserved() -> None:
    """No legitimate variable is ever flagged: the code, the bench, the examples and the test
    helpers name only real settings (or the reserved TEST_ and BENCH_ ones)."""
    sources = [
        *(REPO / "src").rglob("*.py"),
        *(REPO / "bench").rglob("*.py"),
        *(REPO / "examples").rglob("*"),
        REPO / "tests" / "support.py",
        REPO / "tests" / "conftest.py",
        REPO / "Makefile",
    ]
    named = {
        name
        for path in sources
        if path.is_file()
        for name in re.findall(r"TOKENSMITH_[A-Z0-9_]*[A-Z0-9]", path.read_text())
    }
    assert len(named) > 20
    assert unknown_variables(named) == []
