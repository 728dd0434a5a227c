"""SQLite's write-ahead log copied back into the database file by a thread, not by a request.

By default the connection whose commit takes the log past 1,000 pages checkpoints it there and
then: it copies the pages back and syncs both files, inside that request's commit, on the event
loop (SQLite is called in place, ``sqlite_driver.py``), and every other request waits. In a code
exchange that was two thirds of the time spent committing. The server's connections leave it to a
thread of their own instead: a passive checkpoint (it waits for no reader and no writer) every
half second, with SQLite's module releasing the GIL while it works. SQLite's own checkpoint stays
as a backstop, at ``BACKSTOP_PAGES``, should the thread ever fall behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

__all__ = ["BACKSTOP_PAGES", "Checkpointer", "leave_checkpoints_to_the_thread"]

log = logging.getLogger(__name__)

BACKSTOP_PAGES = 10_000  # 40 MiB of log at SQLite's default 4 KiB pages


def leave_checkpoints_to_the_thread(dbapi_connection: Any, _record: Any) -> None:
    """A ``connect`` listener for the server's connections."""
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")


class Checkpointer:
    """A daemon thread running ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` every ``interval``
    seconds until ``stop``."""

    def __init__(self, path: str, interval: float = 0.5) -> None:
        self._path = path
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
        self.checkpoints = 0  # passes that ran (for tests and curiosity)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stopped.wait(self._interval):
                try:
                    if connection is None:
                        # mode=rw: a database removed meanwhile is not created anew, empty.
                        uri = Path(self._path).resolve().as_uri() + "?mode=rw"
                        connection = sqlite3.connect(uri, uri=True, timeout=1)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # busy, or the file is gone: try again next time
                    log.debug("checkpoint skipped", extra={"error": str(exc)})
                    if connection is not None:
                        connection.close()
                        connection = None
        finally:
            if connection is not None:
                connection.close()
