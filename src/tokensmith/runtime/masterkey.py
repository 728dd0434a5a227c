"""Finding the master key, and proving it is the one this database was sealed with.

In development a missing key is generated into ``var/master.key`` (mode 0600) with a warning. The
file is written only after the database has been checked: a database that already holds sealed data
is never paired with a newly generated key, so nothing is silently regenerated over existing data.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tokensmith.core.sealing import MasterKey, SealError, generate_master_key
from tokensmith.errors import ConfigError, StartupError
from tokensmith.persistence.repositories import SqlMetaStore
from tokensmith.settings import Settings

__all__ = ["ResolvedMasterKey", "confirm_master_key", "resolve_master_key"]

log = logging.getLogger(__name__)
_CHECK_NAME = "master_key_check"
_CHECK_CONTEXT = "server_meta:master_key_check"
_CHECK_PLAINTEXT = b"tokensmith master key check v1"


@dataclass(frozen=True)
class ResolvedMasterKey:
    key: MasterKey
    source: str
    text_to_save: str | None = None  # set when development mode generated it just now
    path: Path | None = None


def resolve_master_key(settings: Settings) -> ResolvedMasterKey:
    if settings.master_key is not None:
        return ResolvedMasterKey(
            _parse(settings.master_key.get_secret_value(), "TOKENSMITH_MASTER_KEY"), "environment"
        )
    path = settings.master_key_file or (
        settings.var_dir / "master.key" if settings.mode == "development" else None
    )
    if path is None:
        raise ConfigError("TOKENSMITH_MASTER_KEY is required in production")
    if path.exists():
        _refuse_loose_permissions(path, settings)
        return ResolvedMasterKey(_parse(path.read_text(), str(path)), str(path))
    if settings.master_key_file is not None or settings.mode != "development":
        raise ConfigError(f"TOKENSMITH_MASTER_KEY_FILE: {path} does not exist")
    text = generate_master_key()
    return ResolvedMasterKey(MasterKey.from_text(text), str(path), text_to_save=text, path=path)


async def confirm_master_key(resolved: ResolvedMasterKey, meta: SqlMetaStore) -> None:
    """Check the key against the database's sealed check value; create it on first start."""
    stored = await meta.get(_CHECK_NAME)
    if stored is not None:
        if resolved.text_to_save is not None:
            raise StartupError(
                f"{resolved.path} is missing but this database already holds data sealed with a "
                "master key; restore the file or set TOKENSMITH_MASTER_KEY (nothing was changed)"
            )
        try:
            opened = resolved.key.unseal(stored, _CHECK_CONTEXT)
        except SealError:
            opened = b""
        if opened != _CHECK_PLAINTEXT:
            raise StartupError(
                f"the master key from {resolved.source} is not the one this database was sealed "
                "with; refusing to start (nothing was changed)"
            )
        return
    if resolved.text_to_save is not None and resolved.path is not None:
        _save(resolved.path, resolved.text_to_save)
        log.warning(
            "development mode generated a master key into %s; back it up, and set "
            "TOKENSMITH_MASTER_KEY in production",
            resolved.path,
        )
    await meta.put_if_absent(_CHECK_NAME, resolved.key.seal(_CHECK_PLAINTEXT, _CHECK_CONTEXT))
    # Another node may have won the race with another key: read back and check again.
    await confirm_master_key(ResolvedMasterKey(resolved.key, resolved.source), meta)


def _parse(text: str, source: str) -> MasterKey:
    try:
        return MasterKey.from_text(text)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _refuse_loose_permissions(path: Path, settings: Settings) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 and settings.mode == "production":
        raise ConfigError(
            f"TOKENSMITH_MASTER_KEY_FILE: {path} is readable by others (mode {mode:o})"
        )


def _save(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
