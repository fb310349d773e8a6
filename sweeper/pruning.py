"""Early stopping: running jobs' metric values, read while they run, judged by the pruner.

At each poll, :meth:`EarlyStopping.check` reads every running job's new log lines in one
batched call (:class:`~sweeper.aws.logs.LogTail`), parses the objective's values with
the space file's regexes (:class:`~sweeper.metrics.MetricReader`), reports them to each
trial (``trial.report``) and asks the pruner. A trial it gives up on has the decision
recorded first (so a crash cannot lose it), then its job stopped; when the job ends the
trial is told PRUNED (see :mod:`sweeper.judging`), or COMPLETE if it finished first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Protocol

from sweeper.aws.training import JobBackend
from sweeper.errors import BackendError, TransientError
from sweeper.judging import InFlight
from sweeper.metrics import MetricReader
from sweeper.study import SweepStudy
from sweeper.types import Reporter


class LineSource(Protocol):
    """New log lines of running jobs (:class:`~sweeper.aws.logs.LogTail`)."""

    async def read(self, jobs: Iterable[str]) -> dict[str, list[str]]: ...


class EarlyStopping:
    """Watches the jobs in flight for one sweep run; owned by the scheduler's loop."""

    def __init__(
        self,
        lines: LineSource,
        metrics: MetricReader,
        metric: str,
        study: SweepStudy,
        backend: JobBackend,
        reporter: Reporter,
    ) -> None:
        self._lines = lines
        self._metrics = metrics
        self._metric = metric
        self._study = study
        self._backend = backend
        self._reporter = reporter

    async def check(
        self, flights: Iterable[InFlight], ended: Iterable[InFlight] = ()
    ) -> list[InFlight]:
        """Report new values of ``flights``; stop the jobs the pruner gives up on and
        return their flights, now carrying the step they were pruned at. The last values
        of jobs that just ``ended`` are reported too (their curves stay whole)."""
        watched = {f.job: f for f in flights if f.trial.pruned_at is None}
        last = {f.job: f for f in ended if f.trial.pruned_at is None}
        if not watched and not last:
            return []
        try:
            new = await self._lines.read([*watched, *last])
        except (BackendError, TransientError):
            return []  # the next poll reads from where this one would have
        pruned = []
        for job, lines in new.items():
            points = [
                (p.step, p.value)
                for _, p in await self._metrics.scan(job, lines)
                if p.metric == self._metric
            ]
            if job in last:
                self._metrics.forget(job)
                if points:
                    await self._study.report(last[job].trial.number, points)
            elif points and await self._study.report(watched[job].trial.number, points):
                pruned.append(await self.stop(watched[job], *points[-1]))
        return pruned

    async def stop(self, flight: InFlight, step: int, value: float | None = None) -> InFlight:
        """Record the decision, then stop the job (again, on resume: idempotent)."""
        await self._study.mark_pruning(flight.trial.number, step)
        if value is not None:
            self._reporter.pruned(flight.trial.number, flight.job, step, value)
        await self._backend.stop(flight.job)
        self._metrics.forget(flight.job)
        trial = dataclasses.replace(flight.trial, pruned_at=step)
        return dataclasses.replace(flight, trial=trial)
