"""New trials for the sweep loop: asked of the study one at a time, each with what its
request hooks set up (a new trial's Experiments run), timed for the loop's pacing; and
asked ahead (*pre-asked*) of the job ends that will need them (:meth:`Pacing.asks_due`),
so that a freed slot waits only for CreateTrainingJob."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from sweeper.clock import Clock
from sweeper.judging import Tally
from sweeper.pacing import Pacing
from sweeper.recording import RequestHook
from sweeper.study import JobNamer, SweepStudy, TrialRecord


class Asker:
    """Asks on behalf of one scheduler, whose tally (``trials_total``, the ``ready``
    queue) it keeps up to date. :meth:`ask` is task-safe; :meth:`prefetch` belongs to
    the scheduler's loop."""

    def __init__(
        self,
        study: SweepStudy,
        job_name: JobNamer,
        hooks: Sequence[RequestHook],
        clock: Clock,
        tally: Tally,
        pace: Pacing,
    ) -> None:
        self._study = study
        self._job_name = job_name
        self._hooks = tuple(hooks)
        self._clock = clock
        self._t = tally
        self._pace = pace
        self._lock = asyncio.Lock()  # asks are timed alone (the storage takes one at a time)

    async def ask(self) -> TrialRecord | None:
        """A new trial, or None once the budget is spent (by any orchestrator)."""
        async with self._lock:
            start = self._clock.now()
            record = await self._study.ask(self._job_name)
        if record is None:
            self._t.trials_total = max(self._t.trials_total, self._study.trial_limit)
            return None
        for hook in self._hooks:  # pre-asked trials get their run during the wait
            await hook.prepare(record)
        self._pace.ask_seconds = self._clock.now() - start
        return record

    async def prefetch(
        self, deadline: float, expected: float | None, may_ask: Callable[[], bool]
    ) -> None:
        """Pre-ask the trials the jobs in flight will need (jobs are ``expected`` to take
        that long; None before any has ended), in the long wait after a refill rather
        than between the polls (the next at ``deadline``) that look for a round's ends,
        while ``may_ask`` (the budget, no stop). An ask that runs past the poll's deadline
        delays that poll; left for the refill, it would delay the refill by as long."""
        t = self._t
        if expected is None and t.failed:  # jobs failing fast: no ends to be ready for
            return
        launched = [f.launched_at for f in t.inflight.values()]
        have = len(t.ready) + len(t.pending)
        due = self._pace.asks_due(self._clock.now(), deadline, expected, launched, have)
        while len(t.ready) + len(t.pending) < due and may_ask():
            t.trials_total += 1
            record = await self.ask()
            if record is None:
                break
            t.ready.append(record)
