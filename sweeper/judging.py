"""Judging finished jobs: what each means for its trial, and the tallies it moves.

:class:`Judge` applies :func:`sweeper.decisions.judge` to a job the poll saw end and
updates what the stop conditions read (completed, failed, the Pareto front of the
feasible trials (one objective: the best value), billable, spent); a
retry (or a spot trial's on-demand fallback) is queued as the trial's next attempt.
No I/O: the outcomes go to :class:`sweeper.recording.Results`.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sweeper.config import Budget
from sweeper.decisions import Attempt, Policy, SweepState, Verdict, judge, stop_reason
from sweeper.pareto import Front
from sweeper.polling import PollPlanner
from sweeper.promotion import Promoter, rung_attrs, value_at
from sweeper.recording import Outcome, job_attrs
from sweeper.study import TrialRecord
from sweeper.types import JobState, Progress, Reporter, StopReason


@dataclass(frozen=True, slots=True)
class InFlight:
    trial: TrialRecord
    job: str
    launched_at: float


@dataclass(slots=True)
class Tally:
    front: Front  # of the feasible trials told: one objective, the best value
    launched: int = 0
    completed: int = 0
    failed: int = 0
    polls: int = 0
    failures_total: int = 0
    trials_total: int = 0
    billable: float = 0.0
    spent: float = 0.0  # USD, of the jobs that ended (with instance_price_per_hour)
    since_best: int = 0  # trials told since the front last improved
    stop: StopReason | None = None
    inflight: dict[str, InFlight] = field(default_factory=dict)
    pending: deque[TrialRecord] = field(default_factory=deque)  # existing trials to (re)launch
    ready: deque[TrialRecord] = field(default_factory=deque)  # pre-asked trials
    capacity_wait: bool = False  # a quota refused a create: launch again once a job ends
    capacity_retry_at: float | None = None  # ... or, with none in flight, at this time

    def progress(
        self,
        limit: int,
        parallel: int,
        planner: PollPlanner,
        statuses: dict[str, str],
        elapsed: float,
    ) -> Progress:
        """The live view's figures: ``limit`` trials at most, ``parallel`` at once,
        ``statuses`` each job's secondary status at the last poll."""
        left = limit - self.trials_total + len(self.inflight) + len(self.ready)
        eta = None
        if planner.expected is not None and self.stop is None:
            rounds = math.ceil(max(0, left) / parallel)
            eta = rounds * (planner.mean or planner.expected) if rounds else None
        jobs = tuple(
            (f.trial.number, name, statuses.get(name, "Starting"))
            for name, f in sorted(self.inflight.items(), key=lambda kv: kv[1].trial.number)
        )
        done = (self.completed, self.failed, len(self.inflight))
        front = len(self.front.entries)
        return Progress(*done, limit, self.front.best, elapsed, eta, jobs, front)


class Judge:
    """Judges finished jobs for one sweep run; owned by the scheduler's loop."""

    def __init__(
        self,
        policy: Policy,
        tally: Tally,
        planner: PollPlanner,
        reporter: Reporter,
        promoter: Promoter | None = None,
    ) -> None:
        self._policy = policy
        self._t = tally
        self._planner = planner
        self._reporter = reporter
        self._promoter = promoter

    def stop_reason(self, elapsed: float, budget: Budget) -> StopReason | None:
        """Why dispatching must stop now, if it must; remembered once it holds."""
        t = self._t
        if t.stop is None:
            state = SweepState(
                t.failures_total,
                elapsed,
                t.billable,
                t.front.best,
                t.since_best,
                self._committed(),
            )
            t.stop = stop_reason(budget, self._policy.goal.objectives[0], state)
        return t.stop

    def _committed(self) -> float | None:
        """What the sweep has spent plus what its running jobs and the next one are
        expected to cost (None without a price or before any job ended)."""
        expected, price = self._planner.mean, self._policy.price
        if price is None or expected is None:
            return None
        return self._t.spent + price.job(expected) * (len(self._t.inflight) + 1)

    def finished(self, flight: InFlight, state: JobState) -> list[Outcome]:
        """Decide a finished job's outcome and update the tallies.

        Returns the outcome to record, or nothing when the trial is queued for a retry.
        """
        t = self._t
        t.billable += state.billable_seconds or 0
        if self._policy.price is not None:
            t.spent += self._policy.price.job(state.billable_seconds or 0)
        attrs = job_attrs(state)
        trial, policy = flight.trial, self._policy
        attempt = Attempt(
            trial.rung_attempt,
            trial.stopped_on_exit,
            spot=policy.spot and not trial.on_demand,
            fallback=policy.spot_fallback,
            pruned_at=trial.pruned_at,
        )
        found = judge(state, attempt, policy.goal)
        if found.verdict == Verdict.PRUNED:
            return [Outcome(trial, None, found.reason, attrs, pruned_at=trial.pruned_at)]
        if found.verdict in (Verdict.RETRY, Verdict.ON_DEMAND):
            return self._retry(flight, found.reason, found.verdict == Verdict.ON_DEMAND)
        if found.verdict == Verdict.FAIL or found.values is None:
            return [self.failed(flight, found.reason, attrs)]
        if state.duration is not None:
            self._planner.record(state.duration)
        if self._promoter is not None:
            rungs, billable = self._promoter.rungs, attrs["billable_seconds"] or 0
            trial = value_at(trial, rungs, found.values[0], billable)
            attrs |= rung_attrs(trial)
            self._promoter.reached(trial)
            if trial.rung < self._promoter.rungs.top:
                return [self._paused(flight, trial, found.values[0], attrs)]
        t.completed += 1
        improved = found.feasible and t.front.add(trial.number, found.values)
        t.since_best = 0 if improved else t.since_best + 1
        self._reporter.finished(
            trial.number, flight.job, found.values, state.duration, found.feasible
        )
        return [Outcome(trial, found.values, "", attrs, violations=found.violations)]

    def _paused(
        self, flight: InFlight, trial: TrialRecord, value: float, attrs: dict[str, Any]
    ) -> Outcome:
        """A trial whose job reached a rung below the top: it waits for a promotion."""
        assert self._promoter is not None
        rungs = self._promoter.rungs
        level, metric = rungs.levels[trial.rung], self._policy.goal.objectives[0].metric
        self._reporter.note(
            f"trial {trial.number}: paused at {rungs.resource}={level} ({metric}={value:.6g},"
            f" job {flight.job})"
        )
        return Outcome(trial, (value,), "", attrs, paused=True)

    def _retry(self, flight: InFlight, reason: str, on_demand: bool = False) -> list[Outcome]:
        trial = flight.trial
        self._reporter.note(
            f"trial {trial.number}: job {flight.job} ended ({reason.splitlines()[0][:120]});"
            f" retrying as attempt {trial.attempt + 1}" + (" on demand" if on_demand else "")
        )
        again = dataclasses.replace(
            trial,
            job_name=None,
            attempt=trial.attempt + 1,
            stopped_on_exit=False,
            on_demand=on_demand or trial.on_demand,
            pruned_at=None,
            owner=None,
        )
        self._t.pending.append(again)
        return []

    def failed(
        self, flight: InFlight, reason: str, attrs: dict[str, Any], ran: bool = True
    ) -> Outcome:
        """A failed trial: counted, said, and its outcome (``ran``: a job ran whose log is
        worth keeping)."""
        self._t.failed += 1
        self._t.failures_total += 1
        self._reporter.failed(flight.trial.number, flight.job, reason)
        return Outcome(flight.trial, None, reason, attrs, flight.job if ran else None)
