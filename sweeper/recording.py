"""Writing judged trials to the study, and to whoever records them elsewhere.

The scheduler judges finished jobs in memory and hands each outcome here
(:meth:`Results.add`); :meth:`Results.flush` writes them to the study when the loop has
time, then passes each to the run tracker and keeps the log of a job that failed. A
crash before the flush leaves the trials RUNNING with their job names recorded, which
resume reconciles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sweeper.errors import BackendError, TransientError
from sweeper.study import JOB_NAME, PRUNED_AT, SweepStudy, TrialRecord
from sweeper.types import JobState, Reporter, TrialResult


class RunTracker(Protocol):
    """Records trials elsewhere (Experiments Runs); never fails a trial."""

    async def begin(self, record: TrialRecord) -> None: ...

    def experiment_config(self, number: int) -> dict[str, str] | None: ...

    def enqueue(self, result: TrialResult) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """A finished trial, judged: a value to tell, or the reason it failed."""

    trial: TrialRecord
    value: float | None
    reason: str
    attrs: dict[str, Any]
    job: str | None = None  # set when a job ran and failed: its log is worth keeping
    pruned_at: int | None = None  # the pruner stopped it at this step

    def result(self) -> TrialResult:
        """The outcome as the run tracker takes it."""
        attrs = {**self.attrs, JOB_NAME: self.trial.job_name}
        if self.pruned_at is not None:
            attrs[PRUNED_AT] = self.pruned_at
        if self.value is None:
            attrs["failure"] = self.reason
        return TrialResult(
            self.trial.number, dict(self.trial.params), self.value is not None, attrs
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

    def __init__(
        self,
        study: SweepStudy,
        reporter: Reporter,
        tracker: RunTracker | None = None,
        on_failed_job: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._study = study
        self._reporter = reporter
        self._tracker = tracker
        self._on_failed_job = on_failed_job  # e.g. save its log for the user
        self._queue: list[Outcome] = []

    def add(self, outcomes: Iterable[Outcome]) -> None:
        self._queue += outcomes

    async def record(self, outcome: Outcome) -> None:
        """Add one outcome and write everything queued."""
        self._queue.append(outcome)
        await self.flush()

    async def flush(self) -> None:
        """Write every outcome not yet in the study."""
        while self._queue:
            outcome = self._queue.pop(0)
            number = outcome.trial.number
            if outcome.pruned_at is not None:
                await self._study.tell_stopped_early(number, outcome.pruned_at, outcome.attrs)
            elif outcome.value is None:
                await self._study.tell_failed(number, outcome.reason, outcome.attrs)
                if outcome.job is not None and self._on_failed_job is not None:
                    await self._keep_log(self._on_failed_job, outcome.job)
            else:
                await self._study.tell_complete(number, outcome.value, outcome.attrs)
            if self._tracker is not None:
                self._tracker.enqueue(outcome.result())

    async def _keep_log(self, keep: Callable[[str], Awaitable[None]], job: str) -> None:
        """Save a failed job's log; a log that cannot be read costs a note, nothing more."""
        try:
            await keep(job)
        except (BackendError, TransientError, OSError) as exc:
            self._reporter.note(f"could not save the log of {job}: {exc}")
