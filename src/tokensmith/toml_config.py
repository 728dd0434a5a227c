"""Checks shared by our TOML configuration files (the gateway's, the BFF's): known keys of the
right type, secrets from the environment, URLs. Each problem is a ``ConfigError`` naming the file
and the key, so a bad file stops the start with one line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tokensmith.errors import ConfigError

__all__ = ["check_table", "from_env", "http_url", "read_toml", "required"]


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def check_table(
    document: dict[str, Any], section: str, keys: Mapping[str, type], name: str
) -> dict[str, Any]:
    table = document.get(section)
    if not isinstance(table, dict):
        raise ConfigError(f"{name}: the [{section}] table is required")
    for key, value in table.items():
        expected = keys.get(key)
        if expected is None:
            raise ConfigError(f"{name}: unknown key {section}.{key}")
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            table[key] = value
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{name}: {section}.{key} must be a {expected.__name__}")
    return table


def from_env(table: dict[str, Any], key: str, where: str) -> str:
    """``key`` itself, or the environment variable ``key_env`` names (for secrets)."""
    value, env = table.get(key), table.get(f"{key}_env")
    if (value is None) == (env is None):
        raise ConfigError(f"{where} needs exactly one of {key} and {key}_env")
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{where}.{key}_env names {env}, which is not set")
    return str(value)


def required(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{key} is required")
    return value


def http_url(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where} must be an http(s) URL")
    if parts.query or parts.fragment:
        raise ConfigError(f"{where} must have no query or fragment")
    return str(value)
