"""The emulator's settings: what the space file's ``emulator:`` section, the standalone
emulator's flags and the tests set. Standard library only, so that a sweep can build
them (and its emulator's child process can read them) before either imports the
emulator itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SpotSettings:
    """Managed spot as the emulator plays it (:mod:`sweeper.emulator.spot`)."""

    interruption_rate: float = 0.0
    interruption_after_seconds: float = 1.0
    interrupt_on_log: str | None = None  # a regex; deterministic interruptions for tests
    restart_delay_seconds: float = 0.0  # new spot capacity after an interruption (MaxWait runs)
    discount: float = 0.7  # billable = training * (1 - discount)
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """How the emulator runs jobs. Delays are real seconds on the emulator's side."""

    root: Path
    region: str = "us-east-1"
    account: str = "123456789012"
    cold_start_seconds: float = 0.0
    warm_start_seconds: float = 0.0
    instance_quota: int | None = None  # concurrent instances per instance type
    warm_pool_quota: int | None = None  # warm-pool instances per instance type
    stop_grace_seconds: float = 120.0  # SageMaker's SIGTERM → SIGKILL grace
    # Once a job's entry point has exited: how long a process it left outside its group
    # may hold the job's output before it is killed with the container.
    drain_seconds: float = 1.0
    pool_available_delay_seconds: float = 1.0  # a warm pool is Available this long after
    internal_error_on_log: str | None = None  # a regex: the instance fails (once per job)
    spot: SpotSettings = field(default_factory=SpotSettings)


@dataclass(frozen=True, slots=True)
class EmulatorSettings:
    """The emulator's service: where it listens, whose keys it takes, the faults it
    injects; ``runner``: how it runs jobs."""

    runner: RunnerSettings
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    credentials: tuple[tuple[str, str], ...] = (("test", "test"),)  # (access key, secret)
    trial_component_quota: int | None = 50  # user trial components per trial (None: no limit)
    throttle_rate: float = 0.0  # share of calls answered ThrottlingException
    internal_failure_rate: float = 0.0  # share of calls answered InternalFailure (500)
    seed: int | None = None
    # SageMaker MLflow ARN -> the local tracking URI standing for it (MlflowConfig)
    mlflow: tuple[tuple[str, str], ...] = ()
