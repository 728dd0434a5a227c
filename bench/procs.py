"""Processes the bench starts: each in its own process group, all stopped on exit or signal."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

__all__ = [
    "Group",
    "cpu_seconds",
    "stop_all",
    "terminate_on_signals",
    "wait_for_http",
    "wait_for_log",
]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_started: list[Group] = []


class Group:
    """A command started as the leader of a new process group (its workers join the group)."""

    def __init__(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path
    ) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pgid = self.proc.pid
        _started.append(self)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu(self) -> dict[int, float]:
        """CPU seconds used so far, by process id."""
        return cpu_seconds(self.pgid)

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL to whatever is left after 10 s."""
        if self in _started:
            _started.remove(self)
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 2.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _group_members(self.pgid):
                with contextlib.suppress(ChildProcessError):
                    self.proc.poll()
                time.sleep(0.05)
            if not _group_members(self.pgid):
                break
        self.proc.poll()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_all() -> None:
    for group in reversed(list(_started)):
        group.stop()


@contextlib.contextmanager
def terminate_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so ``finally`` blocks stop every group."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stat_fields(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces; fields resume after the last ")".
    return raw[raw.rindex(")") + 2 :].split()


def _group_members(pgid: int) -> list[tuple[str, list[str]]]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            # fields[0] is the state (field 3 of stat), fields[2] the process group (field 5).
            if fields is not None and int(fields[2]) == pgid and fields[0] != "Z":
                members.append((entry, fields))
    return members


def cpu_seconds(pgid: int) -> dict[int, float]:
    """User plus system CPU of every live process in the group (fields 14 and 15 of stat)."""
    return {int(pid): (int(f[11]) + int(f[12])) / _CLOCK_TICKS for pid, f in _group_members(pgid)}


def wait_for_http(url: str, group: Group, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group.alive():
            raise RuntimeError(f"{group.name} exited during start-up:\n{group.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{group.name} did not answer {url} within {timeout:.0f} s:\n{group.tail()}")


def wait_for_log(group: Group, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group.alive():
            raise RuntimeError(f"{group.name} exited during start-up:\n{group.tail()}")
        if text in group.tail(200):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{group.name} did not log {text!r} within {timeout:.0f} s:\n{group.tail()}")
