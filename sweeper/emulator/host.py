"""The emulator process's terms with its host: it binds to loopback only, holds its state
directory alone, may open as many files as the system allows, runs its helper processes
from its own copy of this package, and ends them by closing their pipe."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import resource
import subprocess
import sys
from pathlib import Path
from typing import IO

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def module_argv(module: str, *args: str) -> list[str]:
    """The command that runs ``module`` as ``python -m module args...`` would, but from
    the same copy of this package as the caller: ``-m`` searches the working directory
    and then the environment, which may hold another (an older install beside a
    checkout run as ``python path/to/sweep.py`` from elsewhere)."""
    code = (
        f"import runpy, sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); "
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", code, *args]


def end_child(proc: subprocess.Popen[bytes], timeout: float, last_words: bytes = b"") -> None:
    """Say ``last_words`` to a child that watches its standard input, close that pipe
    (its cue to stop and save) and wait for it to exit; kill it after ``timeout``."""
    with contextlib.suppress(OSError):  # it may be gone already
        assert proc.stdin is not None
        proc.stdin.write(last_words)
        proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def require_loopback(host: str) -> None:
    """Refuse to serve anywhere but the loopback interface."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the emulator binds to loopback only (127.0.0.1), not {host!r}")


class StateInUse(RuntimeError):
    """Another emulator (another process) serves this state directory."""


class EmulatorFailed(RuntimeError):
    """An emulator's process ended before it served; the message is its own reason."""


def lock_state(root: Path) -> IO[str]:
    """Hold ``<root>/emulator.lock`` for this emulator's life: two emulators on one state
    would each take the other's running jobs for crashed ones."""
    root.mkdir(parents=True, exist_ok=True)
    lock = (root / "emulator.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        lock.close()
        raise StateInUse(
            f"the emulator state {root} is in use by another process (a sweep still"
            " running?); wait for it to end"
        ) from exc
    return lock


def raise_file_limit() -> None:
    """Let the process open as many files as the system allows (best effort)."""
    with contextlib.suppress(ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
