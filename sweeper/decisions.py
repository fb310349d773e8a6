"""The sweep's decisions, as pure functions of typed inputs (no I/O, no clock).

* :func:`judge`: what a finished job means for its trial (complete, retry, fail);
* :func:`stop_reason`: whether dispatching must stop, and why.

The scheduler holds the state; these only read it, so each is tested on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from sweeper.config import Budget, Objective
from sweeper.types import JobState, JobStatus, StopReason

MAX_ATTEMPTS = 3  # jobs per trial when the platform, or the sweep itself, ended one


class Verdict(StrEnum):
    COMPLETE = "complete"
    RETRY = "retry"  # run the trial again as its next attempt
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Attempt:
    """The job being judged, as its trial knows it."""

    attempt: int
    stopped_on_exit: bool = False  # the sweep stopped it as it exited (resume reruns it)


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a finished job means: a value to tell, a retry, or a failure (``reason``)."""

    verdict: Verdict
    value: float | None = None
    reason: str = ""


def judge(state: JobState, job: Attempt, objective: Objective) -> Judgement:
    """Judge a job in a terminal state.

    A job that failed through no fault of the script (``InternalServerError``), or that
    the sweep itself stopped on exit, is retried up to :data:`MAX_ATTEMPTS`; any other
    failure, or a completed job without a finite objective value, fails the trial.
    """
    if state.status != JobStatus.COMPLETED:
        reason = state.failure_reason or f"{state.status}: {state.secondary_status}"
        platform = reason.startswith("InternalServerError")
        ours = state.status == JobStatus.STOPPED and job.stopped_on_exit
        if (platform or ours) and job.attempt < MAX_ATTEMPTS:
            return Judgement(Verdict.RETRY, reason=reason)
        return Judgement(Verdict.FAIL, reason=reason)
    value = state.final_metrics.get(objective.metric)
    if value is None or not math.isfinite(value):
        reason = f"the job reported no value for objective metric {objective.metric!r}"
        return Judgement(Verdict.FAIL, reason=reason)
    return Judgement(Verdict.COMPLETE, value=value)


@dataclass(frozen=True, slots=True)
class SweepState:
    """What the stop conditions read: tallies across every run of the sweep so far."""

    failures: int
    elapsed: float
    billable: float
    best: float | None
    since_best: int


def stop_reason(budget: Budget, objective: Objective, s: SweepState) -> StopReason | None:
    """The first stop condition that holds (failures, wall, billable, target, patience)."""
    target_hit = (
        budget.target is not None
        and s.best is not None
        and (s.best == budget.target or objective.better(s.best, budget.target))
    )
    checks = [
        (s.failures >= budget.max_failures, StopReason.FAILURES),
        (
            budget.max_wall_seconds is not None and s.elapsed >= budget.max_wall_seconds,
            StopReason.WALL,
        ),
        (
            budget.max_billable_seconds is not None and s.billable >= budget.max_billable_seconds,
            StopReason.BILLABLE,
        ),
        (target_hit, StopReason.TARGET),
        (budget.patience is not None and s.since_best >= budget.patience, StopReason.PATIENCE),
    ]
    return next((reason for hit, reason in checks if hit), None)
