"""Writing judged trials to the study, and to whoever records them elsewhere.

The scheduler judges finished jobs in memory and hands each outcome here
(:meth:`Results.add`); :meth:`Results.flush` writes them to the study when the loop has
time, then passes each to the run tracker and keeps the log of a job that failed. A
crash before the flush leaves the trials RUNNING with their job names recorded, which
resume reconciles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sweeper import pareto
from sweeper.errors import BackendError, TransientError
from sweeper.study import JOB_NAME, PRUNED_AT, SweepStudy, TrialRecord
from sweeper.types import JobState, Reporter, TrialResult


class RequestHook(Protocol):
    """Adds to a trial's CreateTrainingJob request (``ExperimentConfig``, ``MlflowConfig``).

    :meth:`prepare` makes what the fields refer to (a run); it may run early, for a trial
    asked ahead of its launch, and again before the create: it must be idempotent and
    never fail the trial. :meth:`fields` is what joins the request.
    """

    async def prepare(self, record: TrialRecord) -> None: ...

    def fields(self, number: int) -> dict[str, Any]: ...


class Observer(Protocol):
    """Learns each trial's outcome once it is in the study (Experiments runs, the logs of
    failed jobs, MLflow). It never fails a trial: its errors are its own to report."""

    async def recorded(self, outcome: Outcome) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """A finished trial, judged: values to tell (one per objective, with each
    constraint's violation: <= 0 when it holds), or the reason it failed."""

    trial: TrialRecord
    values: tuple[float, ...] | None
    reason: str
    attrs: dict[str, Any]
    job: str | None = None  # set when a job ran and failed: its log is worth keeping
    pruned_at: int | None = None  # the pruner stopped it at this step
    violations: dict[str, float] = field(default_factory=dict)
    paused: bool = False  # promotion: valued at a rung below the top, it stays RUNNING

    def result(self) -> TrialResult:
        """The outcome as the run tracker takes it."""
        attrs = {**self.attrs, JOB_NAME: self.trial.job_name}
        if self.pruned_at is not None:
            attrs[PRUNED_AT] = self.pruned_at
        if self.values is None:
            attrs["failure"] = self.reason
        feasible = pareto.holds(self.violations)
        params = dict(self.trial.params)
        return TrialResult(
            self.trial.number, params, self.values is not None, attrs, self.values, feasible
        )


def job_attrs(state: JobState) -> dict[str, Any]:
    """What the study keeps of a finished job (the trial's user attributes)."""
    return {
        "job_status": str(state.status),
        "secondary_status": state.secondary_status,
        "job_seconds": state.duration,
        "job_created": state.created.timestamp() if state.created else None,
        "job_ended": state.ended.timestamp() if state.ended else None,
        "training_seconds": state.training_seconds,
        "billable_seconds": state.billable_seconds,
        "final_metrics": dict(state.final_metrics),
    }


class Results:
    """Outcomes not yet in the study. Task-safe on one event loop: a flush takes each
    outcome once, in order."""

    def __init__(self, study: SweepStudy, observers: Sequence[Observer] = ()) -> None:
        self._study = study
        self._observers = tuple(observers)
        self._queue: list[Outcome] = []

    def add(self, outcomes: Iterable[Outcome]) -> None:
        self._queue += outcomes

    @property
    def pending(self) -> int:
        """How many outcomes wait to be written."""
        return len(self._queue)

    async def record(self, outcome: Outcome) -> None:
        """Add one outcome and write everything queued."""
        self._queue.append(outcome)
        await self.flush()

    async def flush(self) -> None:
        """Write every outcome not yet in the study."""
        while self._queue:
            outcome = self._queue.pop(0)
            number = outcome.trial.number
            if outcome.paused:  # one trial, one run: nothing is finished yet
                assert outcome.values is not None
                step = outcome.trial.rungs[-1].resource
                await self._study.pause(number, outcome.attrs, step, outcome.values[0])
                continue
            if outcome.pruned_at is not None:
                await self._study.tell_stopped_early(number, outcome.pruned_at, outcome.attrs)
            elif outcome.values is None:
                await self._study.tell_failed(number, outcome.reason, outcome.attrs)
            else:
                if outcome.trial.rungs:  # promotion: the top rung ends the trial's curve
                    last = outcome.trial.rungs[-1]
                    await self._study.report(number, [(last.resource, last.value)])
                await self._study.tell_complete(
                    number, outcome.values, outcome.attrs, outcome.violations
                )
            for observer in self._observers:
                await observer.recorded(outcome)


class FailedLogKeeper:
    """Observer: saves the log of each job that failed (its script's fault, or the
    platform's) where the user finds it; a log that cannot be read costs a note."""

    def __init__(self, save: Callable[[str], Awaitable[None]], reporter: Reporter) -> None:
        self._save = save
        self._reporter = reporter

    async def recorded(self, outcome: Outcome) -> None:
        if outcome.job is None or outcome.values is not None or outcome.pruned_at is not None:
            return
        try:
            await self._save(outcome.job)
        except (BackendError, TransientError, OSError) as exc:
            self._reporter.note(f"could not save the log of {outcome.job}: {exc}")
