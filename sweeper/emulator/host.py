"""The emulator process's terms with its host: it binds to loopback only, holds its state
directory alone, and may open as many files as the system allows."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import resource
from pathlib import Path
from typing import IO


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
