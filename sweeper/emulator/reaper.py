"""Kills the emulator's jobs when the emulator ends, however it ends.

Jobs run in process groups of their own (so that a stop reaches a script's children),
which is also why nothing else ends them: an emulator killed with SIGKILL (and a sweep
embedding one) would leave them running, and a resumed sweep would run the same trials
again beside them.

The reaper is a child process in a session of its own, so neither Ctrl-C in a terminal
nor a kill of the emulator's process group reaches it. It reads a pipe whose write end
only the emulator holds: ``+<pgid>`` when a job's process group starts, ``-<pgid>`` when
it has ended. Every job also carries ``SWEEPER_EMULATOR_RUN=<token>`` in its environment.
When the pipe closes (the emulator stopped, or died: the kernel closes its end even on
SIGKILL), the reaper SIGKILLs every group still registered, then every process whose
environment holds the token (one started just before its registration, or one that left
its group), and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
from pathlib import Path

from sweeper.emulator.host import module_argv

TOKEN_VARIABLE = "SWEEPER_EMULATOR_RUN"  # this emulator's: every job's processes
CONTAINER_VARIABLE = "SWEEPER_EMULATOR_CONTAINER"  # one container run's processes


class Reaper:
    """The emulator's side: start, register groups, stop. Used on one event loop."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *module_argv("sweeper.emulator.reaper", self.token),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )

    def started(self, pgid: int) -> None:
        """A job's process group exists (call right after it is spawned)."""
        self._write(f"+{pgid}\n")

    def ended(self, pgid: int) -> None:
        """A job's process group is gone: its number may be reused."""
        self._write(f"-{pgid}\n")

    async def stop(self) -> None:
        """Close the pipe: the reaper kills what is left and exits."""
        proc, self._proc = self._proc, None
        if proc is None or proc.stdin is None:
            return
        proc.stdin.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await proc.wait()

    def _write(self, line: str) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._proc.stdin.write(line.encode())


def _marked(variable: str, value: str) -> list[int]:
    """Processes whose environment holds ``variable=value`` (Linux; none elsewhere)."""
    mark = f"{variable}={value}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if mark in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def kill_marked(variable: str, value: str) -> int:
    """SIGKILL every process whose environment holds ``variable=value`` (but this one),
    until none is left (blocking: a scan of ``/proc``); how many were found."""
    killed = 0
    for _ in range(5):  # a process may have forked while its siblings were killed
        marked = [pid for pid in _marked(variable, value) if pid != os.getpid()]
        if not marked:
            break
        killed += len(marked)
        for pid in marked:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    return killed


def pipe_writers(inodes: frozenset[int]) -> list[int]:
    """Processes (but this one) holding an end of one of the pipes ``inodes`` open
    (blocking: a scan of ``/proc``; Linux; none found elsewhere)."""
    if not inodes:
        return []
    wanted = {f"pipe:[{inode}]" for inode in inodes}
    holders = []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        if wanted & _fd_targets(f"/proc/{entry.name}/fd"):
            holders.append(int(entry.name))
    return holders


def _fd_targets(folder: str) -> set[str]:
    """What the open files of a process (its ``/proc/<pid>/fd``) are; none for one that
    is gone or not ours to look at."""
    try:
        fds = os.listdir(folder)
    except OSError:
        return set()
    targets = set()
    for fd in fds:
        with contextlib.suppress(OSError):  # closed meanwhile
            targets.add(os.readlink(f"{folder}/{fd}"))
    return targets


def reap(groups: set[int], token: str) -> None:
    """SIGKILL ``groups`` and the processes marked with ``token``, until none is left."""
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    kill_marked(TOKEN_VARIABLE, token)


def main(token: str) -> None:
    """The child: track groups from stdin until it closes, then reap."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only the pipe's end ends the reaper
    groups: set[int] = set()
    for line in sys.stdin:
        sign, number = line[:1], line[1:].strip()
        if number.isdigit():
            (groups.add if sign == "+" else groups.discard)(int(number))
    reap(groups, token)


if __name__ == "__main__":
    main(sys.argv[1])
