"""The one error tree of Sweeper.

Everything Sweeper raises on purpose derives from :class:`SweepError`; the CLI turns
it into one line on stderr and an exit code, never a traceback.
"""

from __future__ import annotations


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
