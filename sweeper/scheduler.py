"""The sweep loop: keep ``max_parallel`` jobs in flight, poll them in batches, tell Optuna.

One coroutine (:meth:`Scheduler.run`) drives everything: it refills free slots, sleeps
until the poll planner says a job may have ended, polls every job in flight with one
batched call, and reports each finished job to the study. Launches of one refill run
concurrently in a task group that the loop awaits, so no task outlives the loop. Time
comes from the injected clock; tests run the loop on virtual time.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sweeper.aws.training import JobBackend
from sweeper.clock import Clock
from sweeper.config import SweepConfig
from sweeper.errors import BackendError, TransientError
from sweeper.polling import PollPlanner, PollTiming
from sweeper.study import SweepStudy
from sweeper.types import JobState, JobStatus


class StopReason(StrEnum):
    BUDGET = "all trials dispatched"
    FAILURES = "max_failures reached"
    WALL = "max_wall_seconds reached"
    BILLABLE = "max_billable_seconds reached"
    TARGET = "target reached"
    PATIENCE = "no improvement within patience"


class Reporter(Protocol):
    """Receives trial events as they happen (the CLI prints them)."""

    def started(self, number: int, job: str, params: dict[str, Any]) -> None: ...

    def finished(self, number: int, job: str, value: float, seconds: float | None) -> None: ...

    def failed(self, number: int, job: str, reason: str) -> None: ...


@dataclass(slots=True)
class _InFlight:
    number: int
    job: str
    launched_at: float


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    stop_reason: StopReason
    launched: int
    completed: int
    failed: int
    polls: int


@dataclass(slots=True)
class _Tally:
    launched: int = 0
    completed: int = 0
    failed: int = 0
    polls: int = 0
    failures_total: int = 0
    trials_total: int = 0
    billable: float = 0.0
    best: float | None = None
    since_best: int = 0
    stop: StopReason | None = None
    inflight: dict[str, _InFlight] = field(default_factory=dict)


class Scheduler:
    """Runs one sweep to its end. Use each instance once."""

    def __init__(
        self,
        config: SweepConfig,
        study: SweepStudy,
        backend: JobBackend,
        build_request: Callable[[str, dict[str, Any]], dict[str, Any]],
        job_name: Callable[[int], str],
        clock: Clock,
        reporter: Reporter,
        timing: PollTiming,
    ) -> None:
        self._config = config
        self._study = study
        self._backend = backend
        self._build = build_request
        self._job_name = job_name
        self._clock = clock
        self._reporter = reporter
        self._planner = PollPlanner(timing)
        self._t = _Tally()
        self._started_at = 0.0

    async def run(self) -> SweepOutcome:
        """Dispatch and poll until the budget is spent and nothing is in flight."""
        self._started_at = self._clock.now()
        counts = await self._study.counts()
        best = await self._study.best()
        t = self._t
        t.trials_total, t.failures_total = counts.total, counts.failed
        t.best = best.value if best is not None else None
        while True:
            await self._fill()
            if not t.inflight:
                if self._free_slots() == 0:
                    break
                continue  # every launch failed, but the budget allows more
            ages = [self._clock.now() - f.launched_at for f in t.inflight.values()]
            await self._clock.sleep(self._planner.delay(ages))
            await self._poll()
        return SweepOutcome(t.stop or StopReason.BUDGET, t.launched, t.completed, t.failed, t.polls)

    def _free_slots(self) -> int:
        """How many trials may start now (0 once any stop condition holds)."""
        t, b = self._t, self._config.budget
        elapsed = self._clock.now() - self._started_at
        checks = [
            (t.failures_total >= b.max_failures, StopReason.FAILURES),
            (b.max_wall_seconds is not None and elapsed >= b.max_wall_seconds, StopReason.WALL),
            (
                b.max_billable_seconds is not None and t.billable >= b.max_billable_seconds,
                StopReason.BILLABLE,
            ),
            (self._target_reached(), StopReason.TARGET),
            (b.patience is not None and t.since_best >= b.patience, StopReason.PATIENCE),
            (t.trials_total >= self._study.trial_limit, StopReason.BUDGET),
        ]
        for hit, reason in checks:
            if hit:
                t.stop = t.stop or reason
                return 0
        room = self._study.trial_limit - t.trials_total
        return max(0, min(b.max_parallel - len(t.inflight), room))

    def _target_reached(self) -> bool:
        target, best = self._config.budget.target, self._t.best
        if target is None or best is None:
            return False
        return best >= target if self._config.objective.direction == "maximize" else best <= target

    async def _fill(self) -> None:
        """Start a trial in every free slot; creates of one refill run concurrently."""
        n = self._free_slots()
        if n == 0:
            return
        self._t.trials_total += n
        async with asyncio.TaskGroup() as tg:
            for _ in range(n):
                tg.create_task(self._launch())

    async def _launch(self) -> None:
        number, params, job = await self._study.ask(self._job_name)
        self._reporter.started(number, job, params)
        try:
            await self._backend.create(self._build(job, params))
        except (BackendError, TransientError) as exc:
            await self._fail(number, job, f"CreateTrainingJob failed: {exc}")
            return
        self._t.launched += 1
        self._t.inflight[job] = _InFlight(number, job, self._clock.now())

    async def _poll(self) -> None:
        """One batched status call for every job in flight; settle the finished ones."""
        self._t.polls += 1
        try:
            states = await self._backend.poll(list(self._t.inflight))
        except TransientError:
            return  # retries are exhausted for this tick; the next tick tries again
        for name, state in states.items():
            if state.status.is_terminal and name in self._t.inflight:
                await self._settle(self._t.inflight.pop(name), state)

    async def _settle(self, flight: _InFlight, state: JobState) -> None:
        t = self._t
        t.billable += state.billable_seconds or 0
        attrs = {"job_status": str(state.status), "secondary_status": state.secondary_status}
        metric = self._config.objective.metric
        value = state.final_metrics.get(metric)
        if state.status != JobStatus.COMPLETED:
            reason = state.failure_reason or f"{state.status}: {state.secondary_status}"
            await self._fail(flight.number, flight.job, reason, attrs)
            return
        if value is None or not math.isfinite(value):
            reason = f"the job reported no value for objective metric {metric!r}"
            await self._fail(flight.number, flight.job, reason, attrs)
            return
        if state.duration is not None:
            self._planner.record(state.duration)
        await self._study.tell_complete(flight.number, value, attrs)
        t.completed += 1
        improved = t.best is None or (
            value > t.best if self._config.objective.direction == "maximize" else value < t.best
        )
        t.best, t.since_best = (value, 0) if improved else (t.best, t.since_best + 1)
        self._reporter.finished(flight.number, flight.job, value, state.duration)

    async def _fail(
        self, number: int, job: str, reason: str, attrs: dict[str, Any] | None = None
    ) -> None:
        await self._study.tell_failed(number, reason, attrs or {})
        self._t.failed += 1
        self._t.failures_total += 1
        self._reporter.failed(number, job, reason)
