"""Frozen value types and status enums shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class JobStatus(StrEnum):
    """``TrainingJobStatus`` as SageMaker reports it."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED)


@dataclass(frozen=True, slots=True)
class JobState:
    """What one poll learned about one training job."""

    name: str
    status: JobStatus
    secondary_status: str = ""
    failure_reason: str = ""
    final_metrics: dict[str, float] = field(default_factory=dict)
    created: datetime | None = None
    ended: datetime | None = None
    training_seconds: int | None = None
    billable_seconds: int | None = None
    warm_pool: str | None = None  # WarmPoolStatus.Status: Available, InUse, Reused, ...
    pool_seconds: int | None = None  # ResourceRetainedBillableTimeInSeconds, so far

    @property
    def duration(self) -> float | None:
        """Seconds from creation to end, on the service's own clock (None while running)."""
        if self.created is None or self.ended is None:
            return None
        return (self.ended - self.created).total_seconds()


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a sweep stands, for live display. ``jobs``: (trial, job, secondary status);
    ``best`` the best value of a single objective, ``front`` the size of the Pareto front
    of the feasible trials (several objectives)."""

    done: int
    failed: int
    running: int
    limit: int
    best: float | None
    elapsed: float
    eta: float | None
    jobs: tuple[tuple[int, str, str], ...] = ()
    front: int = 0


class StopReason(StrEnum):
    BUDGET = "all trials dispatched"
    FAILURES = "max_failures reached"
    WALL = "max_wall_seconds reached"
    BILLABLE = "max_billable_seconds reached"
    TARGET = "target reached"
    PATIENCE = "no improvement within patience"
    COST = "max_cost reached"
    CAPACITY = "a quota refused every job while none ran"
    INTERRUPTED = "interrupted"


class OnExit(StrEnum):
    """What an interrupted sweep does with the jobs it has in flight."""

    LEAVE = "leave"  # exit at once; the jobs go on and a rerun re-attaches them
    STOP = "stop"  # stop them; a rerun runs their trials again
    WAIT = "wait"  # start nothing new, but wait for them and record their results


class Reporter(Protocol):
    """Receives trial events as they happen (the CLI prints them)."""

    def started(self, number: int, job: str, params: dict[str, Any]) -> None: ...

    def finished(
        self,
        number: int,
        job: str,
        values: tuple[float, ...],
        seconds: float | None,
        feasible: bool = True,
    ) -> None: ...

    def failed(self, number: int, job: str, reason: str) -> None: ...

    def pruned(self, number: int, job: str, step: int, value: float) -> None: ...

    def note(self, text: str) -> None: ...

    def progress(self, progress: Progress) -> None: ...


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    stop_reason: StopReason
    launched: int
    completed: int
    failed: int
    polls: int
    in_flight: list[str]  # jobs still running when the loop ended (interrupted only)


@dataclass(frozen=True, slots=True)
class TrialResult:
    """A finished trial as the study now holds it: what recording it elsewhere needs."""

    number: int
    params: dict[str, Any]
    completed: bool
    attrs: dict[str, Any]  # the trial's user attributes (job name, times, failure, ...)
    values: tuple[float, ...] | None = None  # the objectives', when completed
    feasible: bool = True  # every constraint held (a completed trial)


@dataclass(frozen=True, slots=True)
class Point:
    """One value of one metric in a job's series: ``time`` in epoch seconds, ``step`` as
    SageMaker counts them (the line's index among that metric's values)."""

    metric: str
    time: float
    step: int
    value: float
