"""One server per ``var/`` directory: a second ``tokensmith serve`` says so instead of fighting."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from tokensmith.errors import StartupError

__all__ = ["ServerLock"]


class ServerLock:
    def __init__(self, var_dir: Path) -> None:
        self.path = var_dir / "tokensmith.pid"
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the server's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            handle.close()
            raise StartupError(
                f"another Tokensmith server is already running with {self.path.parent}/ "
                f"(pid {pid}); stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
