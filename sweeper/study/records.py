"""What the study stores about trials, as the rest of Sweeper reads it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from sweeper import pareto
from sweeper.types import TrialResult

JOB_NAME = "job_name"
ATTEMPT = "attempt"
OWNER = "orchestrator"  # the orchestrator that asked (or adopted) the trial
STOPPED_ON_EXIT = "stopped_on_exit"
ON_DEMAND = "on_demand"  # a spot sweep's trial that falls back to on-demand capacity
PRUNED_AT = "pruned_at_step"  # the pruner stopped the trial's job at this step
RUN_PREFIX = "sweeper:run:"  # study attribute per trial: its Experiments Run
NOTES = "sweeper:notes"
REQUEUED = "sweeper:requeued"  # trials an earlier version failed on a quota, run anew
QUOTA_REFUSED = "CreateTrainingJob failed: ResourceLimitExceeded"  # how earlier runs said it
WARM_POOLS = "sweeper:warm_pools"
WARM_FROM = "sweeper:warm_start_from"  # a parent sweep's trial joined as is: "<study>#<n>"
TRANSFERRED_FROM = "sweeper:transferred_from"  # a trial enqueued from a parent's best
POOL_SECONDS = "sweeper:pool_seconds"
RUNG = "sweeper:rung"  # promotion: the rung the trial's current job trains to
RUNGS = "sweeper:rungs"  # promotion: per rung reached, [resource, value, attempt, billable, job]


def ran_here(trial: FrozenTrial) -> bool:
    """Whether this sweep ran ``trial`` (not a warm start's parent trial, joined as is)."""
    return WARM_FROM not in trial.user_attrs


@dataclass(frozen=True, slots=True)
class Counts:
    complete: int
    failed: int
    running: int
    pruned: int  # stopped early by the pruner
    unlaunched: int = 0  # closed before a job ran (Optuna's PRUNED too)
    warm: int = 0  # a warm start's parent trials: never run, not counted in total
    waiting: int = 0  # enqueued, not asked yet (a transfer, a requeue): not dispatched

    @property
    def total(self) -> int:
        return (
            self.complete
            + self.failed
            + self.running
            + self.pruned
            + self.unlaunched
            + self.waiting
        )

    @property
    def dispatched(self) -> int:
        """Trials that count toward the budget: all but those never launched."""
        return self.complete + self.failed + self.running + self.pruned


@dataclass(frozen=True, slots=True)
class Rung:
    """A rung a trial reached (promotion): the resource trained to, the objective's value
    there, and the job (its attempt, its billable seconds) that got it there."""

    resource: int
    value: float
    attempt: int
    billable: float
    job: str


def rungs_of(attrs: dict[str, Any]) -> tuple[Rung, ...]:
    """The rungs a trial reached, from its user attributes."""
    return tuple(
        Rung(int(r[0]), float(r[1]), int(r[2]), float(r[3]), str(r[4]))
        for r in attrs.get(RUNGS, ())
    )


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """A trial as the scheduler sees it: parameters and its current job."""

    number: int
    params: dict[str, Any]
    job_name: str | None
    attempt: int = 1
    stopped_on_exit: bool = False
    on_demand: bool = False  # its job runs on on-demand capacity (spot fallback)
    pruned_at: int | None = None  # the pruner decided to stop it at this step
    owner: str | None = None  # the orchestrator running it (None: nobody claims it)
    rung: int = 0  # promotion: the rung its current job trains to
    rungs: tuple[Rung, ...] = ()  # promotion: the rungs it reached, with their values

    @property
    def paused(self) -> bool:
        """Promotion: its current rung is valued, and no job of it runs."""
        return len(self.rungs) > self.rung

    @property
    def rung_attempt(self) -> int:
        """Which job of its current rung this is (1 for the first): retries count per
        rung, apart from promotions."""
        return self.attempt - (self.rungs[self.rung - 1].attempt if self.rung else 0)


@dataclass(frozen=True, slots=True)
class Adopted:
    """A RUNNING trial this orchestrator took over, and from whom (None: no claim)."""

    record: TrialRecord
    previous: str | None


JobNamer = Callable[[int, int], str]  # (trial number, attempt) -> job name


def record_of(frozen: FrozenTrial, owner: str | None) -> TrialRecord:
    """A stored RUNNING trial as a record."""
    attrs = frozen.user_attrs
    return TrialRecord(
        frozen.number,
        dict(frozen.params),
        attrs.get(JOB_NAME),
        int(attrs.get(ATTEMPT, 1)),
        bool(attrs.get(STOPPED_ON_EXIT, False)),
        bool(attrs.get(ON_DEMAND, False)),
        attrs.get(PRUNED_AT),
        owner,
        int(attrs.get(RUNG, 0)),
        rungs_of(attrs),
    )


def result_of(frozen: FrozenTrial) -> TrialResult:
    """A stored finished trial as the run trackers take it."""
    completed = frozen.state == TrialState.COMPLETE
    values = tuple(frozen.values) if completed and frozen.values else None
    feasible = pareto.holds(frozen.constraints)
    return TrialResult(
        frozen.number, dict(frozen.params), completed, frozen.user_attrs, values, feasible
    )


def is_unlaunched(frozen: FrozenTrial) -> bool:
    """Closed before any job ran: it does not count toward the budget."""
    return frozen.state == TrialState.PRUNED and PRUNED_AT not in frozen.user_attrs
