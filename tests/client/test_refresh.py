"""Single-flight refresh of a stored session: 8 threads and 8 asyncio tasks of one process
send one refresh; two processes refreshing at the same moment both succeed without tripping
refresh-token reuse detection (SECURITY.md case 27), and the session stays alive."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.client.conftest import Browser, Registered
from tests.oauth.test_audit_events import events
from tests.support import REPO
from tokensmith.client import FileStore, ServerMetadata, Session, login
from tokensmith.settings import Settings


def signed_in(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path, browser: Browser
) -> None:
    # Bearer tokens here (DPoP-bound sessions: test_dpop_end_to_end.py).
    login(metadata, cli_client.client_id, store, scope="openid api:read", opener=browser,
          home=home, timeout=10, dpop=False).close()  # fmt: skip


def counting_client(paths: list[str]) -> httpx.Client:
    def count(request: httpx.Request) -> None:
        paths.append(request.url.path)

    return httpx.Client(timeout=10, event_hooks={"request": [count]})


def test_eight_threads_send_one_refresh(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path,
    browser: Browser,
) -> None:  # fmt: skip
    signed_in(metadata, cli_client, store, home, browser)
    paths: list[str] = []
    with (
        counting_client(paths) as http,
        Session.load(metadata, cli_client.client_id, store, home=home, http=http) as session,
    ):
        barrier = threading.Barrier(8)
        got: list[str] = []

        def one() -> None:
            barrier.wait()
            got.append(session.access_token().value)

        threads = [threading.Thread(target=one) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert paths == ["/token"] and len(set(got)) == 1 and len(got) == 8


def test_eight_tasks_send_one_refresh(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path,
    browser: Browser,
) -> None:  # fmt: skip
    signed_in(metadata, cli_client, store, home, browser)
    paths: list[str] = []
    with (
        counting_client(paths) as http,
        Session.load(metadata, cli_client.client_id, store, home=home, http=http) as session,
    ):

        async def tasks() -> list[str]:
            found = await asyncio.gather(*(session.tokens.get_async() for _ in range(8)))
            return [token.value for token in found]

        got = asyncio.run(tasks())
        assert paths == ["/token"] and len(set(got)) == 1 and len(got) == 8


REFRESH_IN_A_PROCESS = """
import pathlib, sys, time
from tokensmith.client import FileStore, Session, discover
issuer, client_id, home, go = sys.argv[1:5]
home = pathlib.Path(home)
metadata = discover(issuer)
session = Session.load(metadata, client_id, FileStore(home / "sessions"), home=home)
print("ready", flush=True)
while not pathlib.Path(go).exists():
    time.sleep(0.001)
print(session.access_token().value, flush=True)
session.close()
"""


def test_two_processes_refresh_at_once_and_the_session_stays_alive(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path,
    browser: Browser, settings: Settings, tmp_path: Path,
) -> None:  # fmt: skip
    signed_in(metadata, cli_client, store, home, browser)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    args = [sys.executable, "-c", REFRESH_IN_A_PROCESS, metadata.issuer, cli_client.client_id,
            str(home), str(go)]  # fmt: skip
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        go.touch()  # both refresh now
        outputs = [proc.communicate(timeout=30) for proc in procs]
    finally:
        for proc in procs:
            proc.kill() if proc.poll() is None else None
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    tokens = [out.strip() for out, _ in outputs]
    assert len(set(tokens)) == 2  # each process refreshed, one after the other

    # A third refresh works: the family was never revoked as reused.
    with Session.load(metadata, cli_client.client_id, store, home=home) as third:
        token = third.access_token().value
    for value in (*tokens, token):
        answer = httpx.get(
            metadata.userinfo_endpoint or "", headers={"authorization": f"Bearer {value}"}
        )
        assert answer.status_code == 200, answer.text
    time.sleep(0.5)  # audit events are written in batches
    found = events(settings, {"token.issued"})
    assert "token.reuse_detected" not in {e.event for e in found}


def test_no_access_token_leaves_a_refresh_whose_new_refresh_token_was_not_stored(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path,
    browser: Browser,
) -> None:  # fmt: skip
    from tokensmith.client import StorageError

    signed_in(metadata, cli_client, store, home, browser)

    class FullDisk(FileStore):
        def save(self, session: object) -> None:
            raise StorageError("the disk is full")

    full = FullDisk(store.directory)
    with Session.load(metadata, cli_client.client_id, full, home=home) as session:
        with pytest.raises(StorageError, match="disk is full"):
            session.access_token()  # the server rotated; its answer is not used unstored
        assert session.tokens.current is None
