"""Session storage: the keyring through a real in-memory backend (the OS keychain's seam), the
file fallback with its warning, modes 0600/0700 from the first byte, and what is stored."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.errors import KeyringError, PasswordDeleteError

from tokensmith.client import FileStore, KeyringStore, StorageError, StoredSession, open_store
from tokensmith.client.home import client_home, write_private

SECRET = "rt-0123456789-the-refresh-token-value"


class MemoryKeyring(KeyringBackend):
    """A keyring backend that keeps its entries in a dict."""

    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError("no such entry")


class BrokenKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringError(f"locked; asked for {username}")


@pytest.fixture
def installed() -> Iterator[list[KeyringBackend]]:
    """Install a backend as keyring's choice for the test, and put the old one back."""
    before = keyring.get_keyring()
    chosen: list[KeyringBackend] = []
    yield chosen
    keyring.set_keyring(before)


def session(issuer: str = "https://auth.example.com", client_id: str = "cli") -> StoredSession:
    return StoredSession(
        issuer, client_id, SECRET, "openid", "user-1", {"email": "a@example.com"}, None, 1
    )


def test_the_keyring_is_used_when_it_works(installed: list[KeyringBackend], tmp_path: Path) -> None:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    warnings: list[str] = []
    store = open_store(tmp_path, warn=warnings.append)
    assert isinstance(store, KeyringStore) and warnings == []
    store.save(session())
    store.save(session(client_id="other"))
    assert store.load("https://auth.example.com/", "cli") == session()
    assert [name for _, name in backend.entries] == [
        "https://auth.example.com cli", "https://auth.example.com other"
    ]  # fmt: skip
    assert {service for service, _ in backend.entries} == {"tokensmith"}
    assert store.delete("https://auth.example.com", "cli") is True
    assert store.delete("https://auth.example.com", "cli") is False
    assert store.load("https://auth.example.com", "cli") is None
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # nothing on disk


@pytest.mark.parametrize("unusable", [fail.Keyring(), BrokenKeyring()])
def test_no_usable_keyring_falls_back_to_a_private_file_with_a_warning(
    installed: list[KeyringBackend], tmp_path: Path, unusable: KeyringBackend
) -> None:
    keyring.set_keyring(unusable)
    warnings: list[str] = []
    home = tmp_path / "home"
    store = open_store(home, warn=warnings.append)
    assert isinstance(store, FileStore) and warnings == []
    store.save(session())
    store.save(session(client_id="other"))
    assert len(warnings) == 1 and str(home / "sessions") in warnings[0]
    assert "\n" not in warnings[0]
    for path in (home / "sessions").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "sessions").stat().st_mode) == 0o700
    assert store.load("https://auth.example.com", "cli") == session()


def test_the_warning_goes_to_stderr_by_default(
    installed: list[KeyringBackend], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keyring.set_keyring(fail.Keyring())
    open_store(tmp_path).save(session())
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no system keyring" in err and str(tmp_path) in err


def test_a_file_is_never_readable_by_others_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        target = tmp_path / "deep" / "sessions" / "s.json"
        seen: list[int] = []
        stop = threading.Event()

        def watch() -> None:  # every file that appears in the directory, while it is written
            while not stop.is_set():
                for entry in target.parent.glob("*") if target.parent.exists() else []:
                    with contextlib.suppress(FileNotFoundError):
                        seen.append(stat.S_IMODE(entry.stat().st_mode))

        watcher = threading.Thread(target=watch)
        watcher.start()
        for _ in range(50):
            write_private(target, b"{}")
        stop.set()
        watcher.join()
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert set(seen) <= {0o600}
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["s.json"]  # no temporary left


def test_a_wider_directory_is_narrowed(tmp_path: Path) -> None:
    directory = tmp_path / "sessions"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    FileStore(directory).save(session())
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_what_is_stored_holds_no_access_token_and_no_secret_in_reprs(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.save(session())
    (path,) = tmp_path.iterdir()
    stored = json.loads(path.read_text())
    assert set(stored) == {"version", "issuer", "client_id", "refresh_token", "scope", "subject",
                           "claims", "expires_at", "signed_in_at"}  # fmt: skip
    assert SECRET not in repr(session()) and SECRET not in repr(store)


def test_a_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.save(session())
    (path,) = tmp_path.iterdir()
    path.write_text('{"issuer": "x"}')
    with pytest.raises(StorageError, match="sign in again"):
        store.load("https://auth.example.com", "cli")
    path.write_text("not json")
    with pytest.raises(StorageError, match="not valid JSON"):
        store.load("https://auth.example.com", "cli")


def test_a_failing_keyring_is_a_storage_error_without_the_value(
    installed: list[KeyringBackend],
) -> None:
    class FailingWrites(MemoryKeyring):
        def set_password(self, service: str, username: str, password: str) -> None:
            raise KeyringError(f"cannot store {password}")

    store = KeyringStore(FailingWrites())
    with pytest.raises(StorageError) as failed:
        store.save(session())
    assert SECRET not in str(failed.value) and failed.value.__cause__ is None


def test_the_client_home(tmp_path: Path) -> None:
    assert client_home({"TOKENSMITH_CLIENT_HOME": str(tmp_path)}) == tmp_path
    assert client_home({"XDG_CONFIG_HOME": "/x"}) == Path("/x/tokensmith")
    assert client_home({}) == Path.home() / ".config" / "tokensmith"


def test_every_directory_the_kit_makes_is_private_and_a_chosen_home_is_left_alone(
    tmp_path: Path,
) -> None:
    from tokensmith.client.home import write_preferences

    old = os.umask(0o022)
    try:
        home = tmp_path / "a" / "b" / "home"
        FileStore(home / "sessions").save(session())
        for directory in (tmp_path / "a", tmp_path / "a" / "b", home, home / "sessions"):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        chosen = tmp_path / "chosen"
        chosen.mkdir(mode=0o755)
        write_preferences(chosen, {"issuer": "https://auth.example.com"})
        assert stat.S_IMODE(chosen.stat().st_mode) == 0o755  # the user's directory, untouched
        assert stat.S_IMODE((chosen / "config.json").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def _planted(directory: Path) -> Path:
    """Where ``session()`` is kept in a FileStore on ``directory``, with a session saved there."""
    FileStore(directory).save(session())
    (path,) = directory.glob("*.json")
    return path


NOBODY = 65534


def _give_away(path: Path) -> None:
    """Make ``path`` another user's (only root can)."""
    if os.getuid() != 0:
        pytest.skip("only root can make a file another user's")
    os.chown(path, NOBODY, NOBODY)


@pytest.mark.parametrize("how", ["symlink", "mode 0644", "mode 0660", "another user", "a fifo"])
def test_a_planted_or_exposed_session_file_is_refused(tmp_path: Path, how: str) -> None:
    path = _planted(tmp_path / "sessions")
    if how == "symlink":  # to a file of the same user elsewhere, holding someone else's session
        elsewhere = tmp_path / "elsewhere.json"
        os.replace(path, elsewhere)
        path.symlink_to(elsewhere)
    elif how.startswith("mode"):
        path.chmod(int(how.split()[1], 8))
    elif how == "another user":
        _give_away(path)
    else:
        path.unlink()
        os.mkfifo(path, 0o600)  # reading it would hang
    with pytest.raises(StorageError, match="refused"):
        FileStore(tmp_path / "sessions").load("https://auth.example.com", "cli")


@pytest.mark.parametrize("how", ["symlink", "another user"])
def test_a_sessions_directory_that_is_not_ours_is_refused(tmp_path: Path, how: str) -> None:
    directory = tmp_path / "sessions"
    if how == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        directory.symlink_to(tmp_path / "elsewhere")
    else:
        directory.mkdir(mode=0o700)
        _give_away(directory)
    with pytest.raises(StorageError, match="refused"):
        FileStore(directory).save(session())
    if how == "symlink":
        assert list((tmp_path / "elsewhere").iterdir()) == []


def test_preferences_another_user_may_write_are_refused(tmp_path: Path) -> None:
    from tokensmith.client.home import read_preferences, write_preferences

    home = tmp_path / "shared"
    home.mkdir(mode=0o777)
    home.chmod(0o777)  # a world-writable TOKENSMITH_CLIENT_HOME
    write_preferences(home, {"issuer": "https://auth.example.com"})
    (home / "config.json").chmod(0o644)  # readable is fine: preferences are no secret
    assert read_preferences(home) == {"issuer": "https://auth.example.com"}
    (home / "config.json").chmod(0o666)
    with pytest.raises(StorageError, match="writable by other users"):
        read_preferences(home)
    (home / "config.json").chmod(0o644)
    _give_away(home / "config.json")  # planted by another user
    with pytest.raises(StorageError, match="another user"):
        read_preferences(home)


def test_the_lock_file_is_never_followed_through_a_symlink(tmp_path: Path) -> None:
    from tokensmith.client.locking import file_lock

    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    (locks / "s.lock").symlink_to(tmp_path / "victim")
    with (
        pytest.raises(StorageError, match="cannot open the lock file"),
        file_lock(locks / "s.lock"),
    ):
        pass
    assert not (tmp_path / "victim").exists()
