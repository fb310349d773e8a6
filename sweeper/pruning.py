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
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Latest:
    """A running trial's last value, and how many trials the sweep had closed when the
    pruner last judged it (:attr:`SweepStudy.told`)."""

    step: int
    value: float
    told: int


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
        self._latest: dict[str, Latest] = {}  # by job: its last value, when it was judged

    async def check(
        self, flights: Iterable[InFlight], ended: Iterable[InFlight] = ()
    ) -> list[InFlight]:
        """Report new values of ``flights``; stop the jobs the pruner gives up on and
        return their flights, now carrying the step they were pruned at. The last values
        of jobs that just ``ended`` are reported too (their curves stay whole).

        A trial with no new value is judged again at its last one once this sweep has
        closed more trials since: a hopeless trial that has gone quiet (a long epoch, an
        evaluation) is stopped as soon as finished trials show it to be, rather than at
        its next value, or never if it prints no more."""
        watched = {f.job: f for f in flights if f.trial.pruned_at is None}
        last = {f.job: f for f in ended if f.trial.pruned_at is None}
        self._latest = {job: seen for job, seen in self._latest.items() if job in watched}
        if not watched and not last:
            return []
        try:
            new = await self._lines.read([*watched, *last])
        except (BackendError, TransientError):
            return []  # the next poll reads from where this one would have
        for job, flight in last.items():
            points = await self._points(job, new.get(job, []))
            self._metrics.forget(job)  # after its last lines: their steps follow on
            if points:
                await self._study.report(flight.trial.number, points)
        pruned = []
        for job, flight in watched.items():
            if await self._judge(flight, await self._points(job, new.get(job, []))):
                latest = self._latest[job]
                pruned.append(await self.stop(flight, latest.step, latest.value))
        return pruned

    async def _points(self, job: str, lines: list[str]) -> list[tuple[int, float]]:
        """The objective's (step, value) points in ``job``'s new ``lines``."""
        if not lines:
            return []
        scanned = await self._metrics.scan(job, lines)
        return [(p.step, p.value) for _, p in scanned if p.metric == self._metric]

    async def _judge(self, flight: InFlight, points: list[tuple[int, float]]) -> bool:
        """Report ``points`` and ask the pruner; without points, ask again only if
        trials were closed since it last judged this one (nothing else changes its say)."""
        told, seen = self._study.told, self._latest.get(flight.job)
        if points:
            step, value = points[-1]
        elif seen is None or seen.told == told:
            return False
        else:
            step, value = seen.step, seen.value
        self._latest[flight.job] = Latest(step, value, told)
        return await self._study.report(flight.trial.number, points)

    async def stop(self, flight: InFlight, step: int, value: float | None = None) -> InFlight:
        """Record the decision, then stop the job (again, on resume: idempotent)."""
        await self._study.mark_pruning(flight.trial.number, step)
        if value is not None:
            self._reporter.pruned(flight.trial.number, flight.job, step, value)
        await self._backend.stop(flight.job)
        self._metrics.forget(flight.job)
        trial = dataclasses.replace(flight.trial, pruned_at=step)
        return dataclasses.replace(flight, trial=trial)
