"""persistence/checkpoints.py: the write-ahead log is copied back by the thread, not by a commit."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tokensmith.persistence.checkpoints import BACKSTOP_PAGES, Checkpointer
from tokensmith.persistence.connections import close_connections, connections_for
from tokensmith.persistence.database import create_engine


def wal_database(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")  # only the thread under test checkpoints
    connection.execute("CREATE TABLE t (x BLOB)")
    return connection


def test_the_thread_copies_the_log_back(tmp_path: Path) -> None:
    writer = wal_database(tmp_path / "db.sqlite")
    checkpointer = Checkpointer(str(tmp_path / "db.sqlite"), interval=0.05)
    checkpointer.start()
    try:
        for _ in range(50):
            writer.execute("INSERT INTO t VALUES (randomblob(4000))")
        # Rounds that ran during the inserts may have copied only some of them: wait for two
        # rounds that started after the last one.
        wanted = checkpointer.checkpoints + 2
        deadline = time.monotonic() + 10
        while checkpointer.checkpoints < wanted and time.monotonic() < deadline:
            time.sleep(0.02)
        assert checkpointer.checkpoints >= wanted
        # The writer never checkpoints, so only the thread can have put the rows in the file.
        assert (tmp_path / "db.sqlite").stat().st_size > 50 * 4000
    finally:
        checkpointer.stop()
    assert not checkpointer._thread.is_alive()
    writer.close()


def test_a_removed_database_is_not_created_again(tmp_path: Path) -> None:
    path = tmp_path / "gone.sqlite"
    checkpointer = Checkpointer(str(path), interval=0.02)
    checkpointer.start()
    time.sleep(0.2)
    checkpointer.stop()
    assert not path.exists()
    assert checkpointer.checkpoints == 0


@pytest.mark.anyio
async def test_the_servers_connections_leave_checkpoints_to_the_thread(tmp_path: Path) -> None:
    engine = create_engine(make_url(f"sqlite+aiosqlite:///{tmp_path / 'server.sqlite'}"))
    connections = connections_for(engine)
    try:
        with connections.sync_engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        assert pages == BACKSTOP_PAGES
    finally:
        close_connections(engine)
        await engine.dispose()
