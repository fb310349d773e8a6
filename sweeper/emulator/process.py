"""A job's process, whose exit is known when it happens.

``asyncio``'s ``Process.wait()`` (Python 3.11) returns only once the process has exited
*and* its pipes are closed, so a process the script left behind holding its output (a
daemon started in a session of its own) would keep a finished job running. Here the
exit is an event of its own, set by the protocol the moment the process exits: the
runner then ends the container, and reads what is left in the pipes apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_LIMIT = 2**16  # asyncio's default line limit for a subprocess's streams


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=_LIMIT, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


@dataclass(frozen=True, slots=True)
class JobProcess:
    """A spawned process (``stdout`` and ``stderr`` are pipes) and the event of its exit."""

    proc: asyncio.subprocess.Process
    exited: asyncio.Event
    pipes: frozenset[int]  # the inodes of its stdout and stderr pipes

    @property
    def pid(self) -> int:
        """Its process id, which is also its process group's."""
        return self.proc.pid

    async def wait(self) -> int:
        """Its exit code, once it has exited, whoever else holds its pipes."""
        await self.exited.wait()
        code = self.proc.returncode
        assert code is not None
        return code


async def spawn(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> JobProcess:
    """Start ``argv`` in a session (and process group) of its own, so that a signal to
    the group reaches the children it starts; no stdin; stdout and stderr piped."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: _Protocol(loop),
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    process = asyncio.subprocess.Process(transport, protocol, loop)
    return JobProcess(process, protocol.exited, _inodes(transport))


def _inodes(transport: asyncio.SubprocessTransport) -> frozenset[int]:
    """The inodes of the process's stdout and stderr pipes; none for one already read
    to its end (a process that printed and exited at once)."""
    found = set()
    for fd in (1, 2):
        end = transport.get_pipe_transport(fd)
        pipe = end.get_extra_info("pipe") if end is not None else None
        if pipe is None:
            continue
        with contextlib.suppress(ValueError, OSError):  # closed: at its end already
            found.add(os.fstat(pipe.fileno()).st_ino)
    return frozenset(found)
