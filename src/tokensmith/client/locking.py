"""The cross-process lock that makes a refresh single-flight on one machine.

An exclusive lock on a file beside the store: ``fcntl.flock`` on POSIX, ``msvcrt.locking`` on
Windows. The kernel drops it when the holder dies, so a crashed process never wedges the
others. Taken without blocking, retried until ``timeout``: a holder that hangs costs a clear
error, not a hang. The lock file is opened without following a symlink (one planted there would
otherwise have us open, and create, a file elsewhere).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tokensmith.client.errors import StorageError
from tokensmith.client.home import ensure_private_dir

__all__ = ["file_lock"]

_POLL = 0.01


@contextmanager
def file_lock(path: Path, timeout: float = 30.0) -> Iterator[None]:
    ensure_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise StorageError(f"cannot open the lock file {path} ({exc.strerror})") from None
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() > deadline:
                raise StorageError(f"another process holds {path}; gave up after {timeout:.0f} s")
            time.sleep(_POLL)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
