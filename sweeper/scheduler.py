"""The sweep loop: keep ``max_parallel`` jobs in flight, poll them in batches, tell Optuna.

One coroutine (:meth:`Scheduler.run`) drives everything: it refills free slots, sleeps
until the poll planner says a job may have ended, polls every job in flight with one
batched call, and reports each finished job to the study. Launches of one refill run
concurrently in a task group that the loop awaits, so no task outlives the loop. Time
comes from the injected clock; tests run the loop on virtual time.

After a poll, finished jobs are first *judged* in memory (the tallies that stop
conditions read are updated at once), then the freed slots are refilled, and the
results are written to the study a moment later, inside the wait for the next poll,
once the jobs just started are under way: a slot never waits on storage, and storage
work does not compete with the busiest moment of a round. A crash in between leaves
those trials RUNNING with their job names recorded, which is what resume reconciles.

While the loop waits for the next poll it *pre-asks* the trials that poll will
probably need (one per job expected to have ended by then), so a freed slot waits only
for CreateTrainingJob, not for the sampler. Pre-asked trials count toward the budget;
if the sweep stops early (target, patience, failures) the unlaunched ones are closed
as FAIL with the reason, never left RUNNING.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
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
class _Verdict:
    """A finished job, judged: a value to tell, or the reason it failed."""

    flight: _InFlight
    value: float | None
    reason: str
    attrs: dict[str, Any]


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
    ready: deque[tuple[int, dict[str, Any], str]] = field(default_factory=deque)
    unrecorded: list[_Verdict] = field(default_factory=list)
    ask_seconds: float = 0.0  # the last ask's duration, to judge if a pre-ask fits a wait


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
            now = self._clock.now()
            deadline = now + self._planner.delay([now - f.launched_at for f in t.inflight.values()])
            await self._bookkeeping(deadline)
            await self._clock.sleep(deadline - self._clock.now())
            await self._poll()
        await self._flush()
        await self._close_unlaunched()
        return SweepOutcome(t.stop or StopReason.BUDGET, t.launched, t.completed, t.failed, t.polls)

    def _stop_reason(self) -> StopReason | None:
        """Why dispatching must stop now, if it must; remembered once it holds."""
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
        ]
        for hit, reason in checks:
            if hit:
                t.stop = t.stop or reason
        return t.stop

    def _free_slots(self) -> int:
        """How many trials may start now, pre-asked ones included (0 once a stop holds)."""
        t = self._t
        room = self._study.trial_limit - t.trials_total + len(t.ready)
        if self._stop_reason() is not None or room <= 0:
            return 0
        return max(0, min(self._config.budget.max_parallel - len(t.inflight), room))

    def _target_reached(self) -> bool:
        target, best = self._config.budget.target, self._t.best
        if target is None or best is None:
            return False
        return best >= target if self._config.objective.direction == "maximize" else best <= target

    async def _fill(self) -> None:
        """Start a trial in every free slot (pre-asked ones first); creates run concurrently."""
        n = self._free_slots()
        if n == 0:
            return
        ready = [self._t.ready.popleft() for _ in range(min(n, len(self._t.ready)))]
        self._t.trials_total += n - len(ready)
        async with asyncio.TaskGroup() as tg:
            for trial in ready:
                tg.create_task(self._launch(trial))
            for _ in range(n - len(ready)):
                tg.create_task(self._launch(None))

    async def _ask(self) -> tuple[int, dict[str, Any], str]:
        start = self._clock.now()
        trial = await self._study.ask(self._job_name)
        self._t.ask_seconds = self._clock.now() - start
        return trial

    async def _prefetch(self, deadline: float) -> None:
        """Pre-ask a trial per job expected to end by ``deadline`` or within a tenth of a
        job's duration after it (ends cluster), as long as the asks fit before it."""
        t, expected = self._t, self._planner.expected
        if expected is None:
            return
        horizon = deadline + 0.1 * expected
        due = sum(horizon - f.launched_at >= expected for f in t.inflight.values())
        while (
            len(t.ready) < due
            and t.trials_total < self._study.trial_limit
            and self._stop_reason() is None
            and deadline - self._clock.now() > 2 * t.ask_seconds
        ):
            t.trials_total += 1
            t.ready.append(await self._ask())

    async def _close_unlaunched(self) -> None:
        """Close pre-asked trials the sweep no longer needs (it stopped early)."""
        while self._t.ready:
            number, _, _ = self._t.ready.popleft()
            reason = f"not launched: the sweep stopped ({self._t.stop or StopReason.BUDGET})"
            await self._study.tell_failed(number, reason, {})

    async def _launch(self, trial: tuple[int, dict[str, Any], str] | None) -> None:
        number, params, job = trial or await self._ask()
        self._reporter.started(number, job, params)
        sent_at = self._clock.now()  # the job's age counts from before the request
        try:
            await self._backend.create(self._build(job, params))
        except (BackendError, TransientError) as exc:
            flight = _InFlight(number, job, sent_at)
            await self._record(self._failed(flight, f"CreateTrainingJob failed: {exc}", {}))
            return
        self._t.launched += 1
        self._t.inflight[job] = _InFlight(number, job, sent_at)

    async def _poll(self) -> None:
        """One batched status call for every job in flight; settle the finished ones."""
        self._t.polls += 1
        try:
            states = await self._backend.poll(list(self._t.inflight))
        except TransientError:
            return  # retries are exhausted for this tick; the next tick tries again
        finished = [
            (self._t.inflight.pop(name), state)
            for name, state in states.items()
            if state.status.is_terminal and name in self._t.inflight
        ]
        self._t.unrecorded += [self._judge(flight, state) for flight, state in finished]
        if finished:
            await self._fill()  # refill before storage writes: a slot never waits on them

    async def _bookkeeping(self, deadline: float) -> None:
        """Record results and pre-ask trials, after the jobs just started are under way.

        The moments after a refill are the busiest (new processes, or on SageMaker new
        requests); storage work waits a tenth of a job's expected duration, within the
        wait for the next poll anyway.
        """
        expected = self._planner.expected
        if expected is not None:
            quiet = min(0.1 * expected, (deadline - self._clock.now()) / 2)
            await self._clock.sleep(quiet)
        await self._flush()
        await self._prefetch(deadline)

    def _judge(self, flight: _InFlight, state: JobState) -> _Verdict:
        """Decide a finished job's result and update the tallies; no I/O."""
        t = self._t
        t.billable += state.billable_seconds or 0
        attrs = {"job_status": str(state.status), "secondary_status": state.secondary_status}
        metric = self._config.objective.metric
        value = state.final_metrics.get(metric)
        if state.status != JobStatus.COMPLETED:
            reason = state.failure_reason or f"{state.status}: {state.secondary_status}"
            return self._failed(flight, reason, attrs)
        if value is None or not math.isfinite(value):
            reason = f"the job reported no value for objective metric {metric!r}"
            return self._failed(flight, reason, attrs)
        if state.duration is not None:
            self._planner.record(state.duration)
        t.completed += 1
        improved = t.best is None or (
            value > t.best if self._config.objective.direction == "maximize" else value < t.best
        )
        t.best, t.since_best = (value, 0) if improved else (t.best, t.since_best + 1)
        self._reporter.finished(flight.number, flight.job, value, state.duration)
        return _Verdict(flight, value, "", attrs)

    def _failed(self, flight: _InFlight, reason: str, attrs: dict[str, Any]) -> _Verdict:
        self._t.failed += 1
        self._t.failures_total += 1
        self._reporter.failed(flight.number, flight.job, reason)
        return _Verdict(flight, None, reason, attrs)

    async def _flush(self) -> None:
        """Write every judged result not yet in the study."""
        while self._t.unrecorded:
            await self._record(self._t.unrecorded.pop(0))

    async def _record(self, verdict: _Verdict) -> None:
        """Write a judged result to the study."""
        number = verdict.flight.number
        if verdict.value is None:
            await self._study.tell_failed(number, verdict.reason, verdict.attrs)
        else:
            await self._study.tell_complete(number, verdict.value, verdict.attrs)
