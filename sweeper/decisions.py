"""The sweep's decisions, as pure functions of typed inputs (no I/O, no clock).

* :func:`judge`: what a finished job means for its trial (complete, retry, fail);
* :func:`stop_reason`: whether dispatching must stop, and why.

The scheduler holds the state; these only read it, so each is tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sweeper import pareto
from sweeper.config import Budget, Goal, Objective, SweepConfig
from sweeper.cost import Price
from sweeper.promotion import Rungs
from sweeper.types import JobState, JobStatus, StopReason

MAX_ATTEMPTS = 3  # jobs per trial when the platform, or the sweep itself, ended one
MAX_WAIT = "MaxWaitTimeExceeded"


@dataclass(frozen=True, slots=True)
class Policy:
    """What the scheduler decides with: the goal (objectives, constraints) and how the
    sweep's jobs use capacity. The scheduler gets this, not the whole space file; the
    budget, which may change while the sweep runs, it reads from the study."""

    goal: Goal
    sweep: str  # the sweep's name: each trial's checkpoint key derives from it
    spot: bool = False
    spot_fallback: bool = False  # rerun on demand what spot cannot serve
    warm_pools: bool = False  # jobs ask for a keep-alive
    keep_pools: bool = False  # pools outlive the sweep
    price: Price | None = None
    rungs: Rungs | None = None  # promotion: trials pause at these and resume

    @classmethod
    def of(cls, config: SweepConfig) -> Policy:
        est = config.estimator
        return cls(
            goal=config.goal,
            sweep=config.name,
            spot=est.use_spot_instances,
            spot_fallback=est.spot_fallback is not None,
            warm_pools=est.keep_alive_period_in_seconds > 0,
            keep_pools=est.keep_pools_after_sweep,
            price=Price.of(est),
            rungs=Rungs.of(config),
        )


class Verdict(StrEnum):
    COMPLETE = "complete"
    RETRY = "retry"  # run the trial again as its next attempt
    ON_DEMAND = "on_demand"  # run it again as its next attempt, on on-demand capacity
    PRUNED = "pruned"  # the pruner stopped it
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Attempt:
    """The job being judged, as its trial knows it."""

    attempt: int
    stopped_on_exit: bool = False  # the sweep stopped it as it exited (resume reruns it)
    spot: bool = False  # it ran on managed spot
    fallback: bool = False  # estimator.spot_fallback: on_demand
    pruned_at: int | None = None  # the pruner decided to stop it at this step


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a finished job means: values to tell (one per objective) with each
    constraint's violation (<= 0: it holds), a retry, or a failure (``reason``)."""

    verdict: Verdict
    values: tuple[float, ...] | None = None
    reason: str = ""
    violations: dict[str, float] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return pareto.holds(self.violations)


def judge(state: JobState, job: Attempt, goal: Goal) -> Judgement:
    """Judge a job in a terminal state.

    A job that failed through no fault of the script (``InternalServerError``), or that
    the sweep itself stopped on exit, is retried up to :data:`MAX_ATTEMPTS`. A spot job
    that spot capacity could not serve (``MaxWaitTimeExceeded``, ``CapacityError``) is
    rerun on demand with ``fallback``, or fails saying so. Any other failure, or a
    completed job without a finite value for every objective and constraint metric, fails
    the trial, naming the metric. A job the pruner
    stopped is PRUNED, however it ended, unless it completed before the stop landed.
    """
    if job.pruned_at is not None and state.status != JobStatus.COMPLETED:
        return Judgement(Verdict.PRUNED, reason=f"pruned at step {job.pruned_at}")
    if job.spot and _spot_unserved(state):
        if job.fallback:
            return Judgement(Verdict.ON_DEMAND, reason=_reason(state))
        return Judgement(
            Verdict.FAIL,
            reason=f"{_reason(state)}: spot capacity could not run the job within max_wait"
            " (estimator.spot_fallback: on_demand reruns such trials on demand)",
        )
    if state.status != JobStatus.COMPLETED:
        reason = _reason(state)
        platform = reason.startswith("InternalServerError")
        ours = state.status == JobStatus.STOPPED and job.stopped_on_exit
        if (platform or ours) and job.attempt < MAX_ATTEMPTS:
            return Judgement(Verdict.RETRY, reason=reason)
        return Judgement(Verdict.FAIL, reason=reason)
    values = goal.values(state.final_metrics)
    if isinstance(values, str):
        role = "objective" if values in goal.metrics else "constraint"
        reason = (
            f"the job reported no value for {role} metric {values!r}: no line of its output"
            " matched the metric's regex, or the regex was dropped as too slow to match (the"
            " job's log, kept under .sweeps/<name>/logs/, says which)"
        )
        return Judgement(Verdict.FAIL, reason=reason)
    return Judgement(Verdict.COMPLETE, values, violations=goal.violations(state.final_metrics))


def _reason(state: JobState) -> str:
    return state.failure_reason or f"{state.status}: {state.secondary_status}"


def _spot_unserved(state: JobState) -> bool:
    """Whether spot capacity, not the job, ended it."""
    waited_out = state.status == JobStatus.STOPPED and state.secondary_status == MAX_WAIT
    return waited_out or state.failure_reason.startswith("CapacityError")


@dataclass(frozen=True, slots=True)
class SweepState:
    """What the stop conditions read: tallies across every run of the sweep so far."""

    failures: int
    elapsed: float
    billable: float
    best: float | None
    since_best: int
    committed_cost: float | None = None  # USD spent plus running jobs' expected cost


def stop_reason(budget: Budget, objective: Objective, s: SweepState) -> StopReason | None:
    """The first stop condition that holds (failures, wall, billable, target, patience,
    cost: what was spent plus what the running jobs and one more would cost passes
    ``max_cost``)."""
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
        (
            budget.max_cost is not None
            and s.committed_cost is not None
            and s.committed_cost > budget.max_cost,
            StopReason.COST,
        ),
    ]
    return next((reason for hit, reason in checks if hit), None)
