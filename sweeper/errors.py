"""The one error tree of Sweeper.

Everything Sweeper raises on purpose derives from :class:`SweepError`; the CLI turns
it into one line on stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import errno


class SweepError(Exception):
    """Base of every error Sweeper raises deliberately."""

    exit_code = 1


class ConfigError(SweepError):
    """The space file or the command line is wrong; the message names the key path."""

    exit_code = 2


class BackendError(SweepError):
    """SageMaker (or the emulator) refused a request for good: retrying will not help."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TransientError(SweepError):
    """A call failed in a way that may pass (throttling, 5xx, connection trouble)."""


class CapacityError(BackendError):
    """A quota was hit (ResourceLimitExceeded): wait for capacity, do not fail the trial."""


class AccessError(SweepError):
    """AWS refused who we are or what we may do (bad or expired credentials, a missing
    permission). Fatal for the sweep, never for a trial: the trial is retried on resume."""


class StorageUnavailable(SweepError):
    """The study's storage stayed unreachable past its retry bound: the sweep stops, its
    jobs keep running, and the same command resumes it once storage is back."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class StorageFault(StorageUnavailable):
    """The study's storage refuses for a reason waiting will not fix (read-only, damaged,
    disk full): the sweep stops at once, what was recorded is kept, and the message says
    what to do."""

    exit_code = 74  # EX_IOERR


_LOCAL_FAULTS = {
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is spent: free some space",
    errno.EROFS: "it is on a read-only file system: make it writable",
    errno.EACCES: "permission denied: make it writable for this user",
    errno.EPERM: "permission denied: make it writable for this user",
}


def local_fault(exc: OSError) -> str | None:
    """A local file fault (full disk, read-only, no permission) in one line that says
    what to do; None for any other OSError."""
    advice = _LOCAL_FAULTS.get(exc.errno or 0)
    if advice is None:
        return None
    where = f"{exc.filename} " if exc.filename else ""
    return (
        f"{where}cannot be written ({exc.strerror}); {advice}, then run the same command"
        " again (what was recorded is kept)"
    )


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions an exception group holds, however nested (``[exc]`` if not one)."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in leaves(e)]
    return [exc]
