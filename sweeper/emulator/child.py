"""The sweep's own emulator, in a process of its own.

Why a process: the emulator's server, its jobs' bookkeeping and its S3 transfers are
Python too. On a thread of the sweep's process they waited for its interpreter lock
whenever the orchestrator was busy (asking Optuna, recording runs), so a job's download
and upload took several times as long as alone, and a 2-core machine used one. In a
process of its own the emulator answers as a remote service does.

The parent sends the settings (keys included) through the child's standard input and
keeps that pipe open. When the sweep exits it says ``stop`` and closes the pipe: the
emulator stops as a standalone one does (its jobs end Failed, its state is saved). If
the pipe ends without a word, the sweep died (even by SIGKILL): the emulator exits at
once, as it did when it died with the sweep on a thread of its process, and its reaper
kills the jobs and whatever they started; its S3 saves itself. The child runs in a
session of its own, so a Ctrl-C in the terminal reaches only the sweep, which decides
what becomes of the jobs. A sweep started again at once waits for the previous child to
let go of the state directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, NoReturn

from sweeper.emulator.host import EmulatorFailed, StateInUse, end_child, module_argv
from sweeper.emulator.s3 import S3Server
from sweeper.errors import leaves

if TYPE_CHECKING:  # the child imports the server only once its S3 child is booting
    from sweeper.emulator.server import Emulator
from sweeper.emulator.settings import EmulatorSettings

STOP_SECONDS = 150.0  # the child's own stop: jobs' grace, then S3 written back
STATE_WAIT_SECONDS = 60.0  # for an earlier child to let go of the same state
STOP = b"stop\n"  # what the sweep says before it closes the pipe
EXIT_ORPHANED = 70  # the sweep died: the child exits at once


class ChildEmulator:
    """``with ChildEmulator(settings) as emu: emu.endpoint_url`` — the child stops, and
    every job it ran ends, when the block exits. Raises StateInUse if another emulator
    keeps the state directory past ``state_wait_seconds``."""

    def __init__(
        self, settings: EmulatorSettings, state_wait_seconds: float = STATE_WAIT_SECONDS
    ) -> None:
        self.settings = settings
        self.state_wait_seconds = state_wait_seconds
        self.endpoint_url = ""
        self.s3_endpoint_url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ChildEmulator:
        return self if self._proc is not None else self.start()

    def start(self) -> ChildEmulator:
        """Start the child; return once it serves (its endpoints are set)."""
        self.spawn()
        return self.wait()

    def spawn(self) -> None:
        """Start the child and hand it its settings; return at once (it boots in about
        a second, which the caller may spend on its own imports), then :meth:`wait`."""
        proc = self._proc = subprocess.Popen(
            module_argv("sweeper.emulator.child"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C is the sweep's to handle
        )
        assert proc.stdin is not None
        runner = self.settings.runner
        s3 = {"root": str(runner.root), "region": runner.region}
        try:
            proc.stdin.write(json.dumps(s3 | {"keys": self.settings.credentials}).encode() + b"\n")
            pickle.dump((self.settings, self.state_wait_seconds), proc.stdin)
            proc.stdin.flush()
        except BaseException:
            self._abandon()
            raise

    def wait(self) -> ChildEmulator:
        """Return once the spawned child serves (its endpoints are set); raise what kept
        it from serving (StateInUse, OSError, EmulatorFailed), having ended it."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None, "spawn() first"
        try:
            line = proc.stdout.readline()
        except BaseException:  # a Ctrl-C while it waits for the state: nothing runs yet
            self._abandon()
            raise
        answer = json.loads(line) if line.strip() else {}
        if "endpoint_url" not in answer:
            self._abandon()
            if answer.get("kind") == "StateInUse":
                raise StateInUse(answer["error"])
            if answer.get("kind") == "OSError":
                raise OSError(*answer["os"])
            raise EmulatorFailed(answer.get("error") or "it exited before it said where it serves")
        self.endpoint_url = answer["endpoint_url"]
        self.s3_endpoint_url = answer["s3_endpoint_url"]
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pipe and wait for the child to stop (it ends its jobs and saves its
        state). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            end_child(proc, STOP_SECONDS, STOP)

    def _abandon(self) -> None:
        """End a child that is not serving yet (its helpers save and reap on their own)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()

    @property
    def calls(self) -> Counter[str]:
        """Requests the child received so far, by operation (``/_emulator/stats``)."""
        import urllib.request

        url = f"{self.endpoint_url}/_emulator/stats"
        with urllib.request.urlopen(url, timeout=10) as response:
            return Counter(json.load(response)["calls"])


def _os_error(exc: OSError) -> list[Any]:
    """What rebuilds ``exc`` on the other side of the pipe: errno, message, file."""
    return [exc.errno, exc.strerror, *([str(exc.filename)] if exc.filename else [])]


def _say(out: IO[bytes], answer: dict[str, Any]) -> None:
    out.write(json.dumps(answer).encode() + b"\n")
    out.flush()


def _open(settings: EmulatorSettings, wait: float, s3: S3Server) -> Emulator:
    """The emulator on ``settings``, once an earlier one has let go of its state (within
    ``wait`` seconds)."""
    from sweeper.emulator.server import Emulator

    deadline = time.monotonic() + wait
    while True:
        try:
            return Emulator(settings, s3)
        except StateInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> None:
    """The child: settings from the pipe, serve, say where, stop when the pipe ends or
    on SIGTERM. The pipe's first line is its S3 child's part (directory, region, keys):
    that child is spawned before anything else, so that its imports (moto's, about half
    a second) run beside this process's own and its loading of the state."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    first = json.loads(stdin.readline())  # S3's part: it boots while this process imports
    s3 = S3Server(Path(first["root"]), first["region"], tuple(map(tuple, first["keys"])))
    s3.spawn()
    settings, wait = pickle.load(stdin)
    try:
        emulator = _open(settings, wait, s3)
    except StateInUse as exc:
        s3.abandon()
        _say(stdout, {"error": str(exc), "kind": "StateInUse"})
        return
    except OSError as exc:  # a read-only or full disk: the sweep says so in one line
        s3.abandon()
        _say(stdout, {"error": str(exc), "kind": "OSError", "os": _os_error(exc)})
        return

    said = threading.Event()  # where it serves, or why it could not

    async def serve() -> None:
        loop, stop = asyncio.get_running_loop(), asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)

        def wait_for_eof() -> None:
            if stdin.read() != STOP:  # the sweep is gone without a word
                os._exit(EXIT_ORPHANED)
            loop.call_soon_threadsafe(stop.set)

        def started(url: str) -> None:
            _say(stdout, {"endpoint_url": url, "s3_endpoint_url": emulator.s3.endpoint_url})
            said.set()
            threading.Thread(target=wait_for_eof, daemon=True).start()

        await emulator.serve(started, stop)

    try:
        asyncio.run(serve())
    except Exception as exc:
        _failed(leaves(exc)[0], said.is_set(), stdout)


def _failed(cause: BaseException, served: bool, out: IO[bytes]) -> NoReturn:
    """End the child on ``cause``. Before it said where it serves (its S3 child's
    directory), the sweep is told why, and says it; after (a full disk at its stop), one
    line on stderr. Not through the interpreter's exit: a thread may still read the pipe."""
    if not served:
        os_error = _os_error(cause) if isinstance(cause, OSError) else None
        _say(out, {"error": str(cause), "kind": "OSError" if os_error else "", "os": os_error})
    else:
        print(f"emulator: stopped on an error: {cause}", file=sys.stderr, flush=True)
    os._exit(1)


if __name__ == "__main__":
    main()
