"""The sweep loop: keep ``max_parallel`` jobs in flight, poll them in batches, tell Optuna.

One coroutine (:meth:`Scheduler.run`) drives everything. It first *reconciles* the
trials an earlier run left RUNNING (re-attach, harvest, retry or create each one by
its recorded job name), then loops: refill free slots, wait until the poll planner
says a job may have ended, poll every job in flight with one batched call, and report
finished jobs to the study. Launches of one refill run concurrently in a task group
that the loop awaits, so no task outlives the loop. Time comes from the injected
clock; tests run the loop on virtual time.

After a poll, finished jobs are first *judged* in memory (the tallies that stop
conditions read are updated at once), then the freed slots are refilled, and the
results are written to the study a moment later, in a wait for a later poll once the
jobs just started are under way (:mod:`sweeper.pacing`): a slot never waits on storage.
A crash in between leaves those trials RUNNING with their job names recorded, which is
what resume reconciles. While it waits, the loop also *pre-asks* the trials the next
polls will probably need, so a freed slot waits only for CreateTrainingJob. Pre-asked
trials count toward the budget; if the sweep stops early they are closed as PRUNED.

What a finished job means for its trial, and when to stop dispatching, are decided by
the pure functions of :mod:`sweeper.decisions`; a retry (or a spot trial's on-demand
fallback) runs under the next attempt's job name. Jobs are created by
:class:`~sweeper.creation.JobCreator`, which works around the warm-pool and spot quotas;
any other quota refusal (``ResourceLimitExceeded``) is never a failure: the trial waits,
and dispatching resumes when a job in flight ends or, with none, after a growing wait
(:class:`~sweeper.capacity.QuotaWait`). The slot of a job whose warm pool is on its way
is held for it (:class:`~sweeper.capacity.PoolGate`), so the replacement starts on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from sweeper import closing
from sweeper.asking import Asker
from sweeper.aws.training import JobBackend
from sweeper.capacity import (
    EMULATOR_POOLS,
    PoolGate,
    PoolTiming,
    QuotaBackoff,
    QuotaWait,
)
from sweeper.clock import Clock, first_of
from sweeper.creation import JobCreator, RequestBuilder
from sweeper.decisions import Policy
from sweeper.errors import BackendError, CapacityError, TransientError
from sweeper.judging import InFlight, Judge, Tally
from sweeper.pacing import Pacing
from sweeper.pareto import Front
from sweeper.polling import PollPlanner, PollTiming
from sweeper.promotion import Promoter, store_rung
from sweeper.pruning import EarlyStopping
from sweeper.recording import Observer, RequestHook, Results
from sweeper.resume import Reconciled
from sweeper.sharing import Sharing
from sweeper.study import JobNamer, SweepStudy, TrialRecord
from sweeper.types import OnExit, Progress, Reporter, StopReason, SweepOutcome


class Scheduler:
    """Runs one sweep to its end. Use each instance once; :meth:`interrupt` is task-safe."""

    def __init__(
        self,
        policy: Policy,
        study: SweepStudy,
        backend: JobBackend,
        build_request: RequestBuilder,
        job_name: JobNamer,
        clock: Clock,
        reporter: Reporter,
        timing: PollTiming,
        hooks: Sequence[RequestHook] = (),
        observers: Sequence[Observer] = (),
        pools: PoolTiming = EMULATOR_POOLS,
        early: EarlyStopping | None = None,
        quota_backoff: QuotaBackoff = QuotaBackoff(),  # noqa: B008 (frozen)
    ) -> None:
        self._policy = policy
        self._study = study
        self._backend = backend
        self._creator = JobCreator(policy, study, backend, build_request, reporter.note)
        self._pools = PoolGate(pools)
        self._quota = QuotaWait(quota_backoff, reporter.note)
        self._early = early
        self._job_name = job_name
        self._clock = clock
        self._reporter = reporter
        self._hooks = tuple(hooks)
        self._results = Results(study, observers)
        self._sharing = Sharing(study, backend, clock, reporter.note)
        self._planner = PollPlanner(timing)
        self._t = Tally(front=Front(policy.goal.directions))
        self._promoter = Promoter(policy.rungs) if policy.rungs is not None else None
        self._judge = Judge(policy, self._t, self._planner, reporter, self._promoter)
        self._started_at = 0.0
        self._on_exit = OnExit.LEAVE
        self._wake = asyncio.Event()
        self._statuses: dict[str, str] = {}  # job -> secondary status at the last poll
        self._pace = Pacing()
        self._asker = Asker(study, job_name, hooks, clock, self._t, self._pace)

    @property
    def interrupted(self) -> bool:
        return self._t.stop == StopReason.INTERRUPTED

    def interrupt(self, on_exit: OnExit) -> None:
        """Stop dispatching now; ``on_exit`` says what becomes of the jobs in flight."""
        self._t.stop, self._on_exit = StopReason.INTERRUPTED, on_exit
        self._wake.set()

    async def run(self) -> SweepOutcome:
        """Reconcile, then dispatch and poll until the budget is spent and nothing runs."""
        self._started_at = self._clock.now()
        for number in await self._study.requeue_quota_refusals():  # never a failure now
            self._reporter.note(f"trial {number} failed on a quota refusal: it runs again")
        counts, t = await self._study.counts(), self._t
        t.failures_total = counts.failed
        for trial in await self._study.front():
            t.front.add(trial.number, tuple(trial.values))
        if self._promoter is not None:  # before taking over: a paused trial is judged again
            await self._promoter.refresh(self._study, self._clock.now())
        await self._take_over(await self._sharing.join())
        try:
            t.trials_total = (await self._study.counts()).dispatched
            await self._loop()
            await self._results.flush()
            if self.interrupted and self._on_exit == OnExit.STOP:
                flights = self._t.inflight.values()
                await closing.stop_in_flight(self._policy, self._study, self._backend, flights)
            elif not self.interrupted:
                await closing.close_unlaunched(self._study, t.ready, t.stop)
                if self._promoter is not None:
                    for outcome in self._promoter.close_all():
                        await self._results.record(outcome)
        finally:
            await self._sharing.leave()
        return SweepOutcome(
            t.stop or StopReason.BUDGET,
            t.launched,
            t.completed,
            t.failed,
            t.polls,
            sorted(t.inflight),
        )

    async def _loop(self) -> None:
        """Dispatch and poll until nothing is left to launch and nothing runs, here or
        (unless interrupted) on any other orchestrator sharing the sweep."""
        t = self._t
        while True:
            await self._fill()
            if not t.inflight and not self._pools.held:
                if self._launchable() > 0:
                    continue  # every launch failed, but the budget allows more
                if self.interrupted:
                    return
                if t.capacity_retry_at is not None and t.stop is None:
                    await self._sleep_until(t.capacity_retry_at)
                    t.capacity_retry_at, t.capacity_wait = None, False
                    continue
                others = await self._sharing.others_running()
                await self._share()  # trials taken over while asking, or dead ones'
                if t.inflight or self._launchable() > 0:
                    continue
                if not others:
                    if await self._budget_given_back():
                        continue
                    return
                await self._sleep_until(min(self._sharing.due, self._clock.now() + 1.0))
                await self._read_budget()
                continue
            if self.interrupted and self._on_exit != OnExit.WAIT:
                return
            deadline = min(self._next_poll(), self._sharing.due)
            await self._bookkeeping(deadline)
            await self._sleep_until(deadline)
            if self.interrupted and self._on_exit != OnExit.WAIT:
                return
            await self._poll()

    async def _budget_given_back(self) -> bool:
        """Before ending: whether places in the budget came back after all (a trial whose
        asking was cut short, closed unlaunched when adopted, or ``sweep.py set`` raised
        it). The study's count decides."""
        await self._read_budget()
        self._t.trials_total = await self._study.budget_used()
        return self._launchable() > 0

    async def _read_budget(self) -> None:
        """Take up the budget as ``sweep.py set`` left it in the study; say what changed.
        A stop that the budget decided is decided again under the new one."""
        changed = await self._study.refresh_budget()
        if changed:
            self._reporter.note("budget changed: " + ", ".join(changed))
            if self._t.stop not in (StopReason.INTERRUPTED, StopReason.CAPACITY):
                self._t.stop = None

    def _next_poll(self) -> float:
        """When to poll: the planner's choice, sooner while a pool is on its way."""
        now = self._clock.now()
        delay = self._planner.delay([now - f.launched_at for f in self._t.inflight.values()])
        if self._pools.held:
            delay = min(delay, self._pools.timing.poll)
        return now + delay

    async def _share(self) -> None:
        """On the lease's beat: renew it, let go of trials others took, take dead ones'."""
        found, lost = await self._sharing.tick(list(self._t.inflight.values()))
        if self._promoter is not None:  # other orchestrators' rungs rank too
            await self._promoter.refresh(self._study, self._clock.now())
        for job in lost:
            self._t.inflight.pop(job, None)
        await self._take_over(found)

    async def _take_over(self, found: Reconciled) -> None:
        """Settle trials taken over RUNNING (left by an earlier run or a dead orchestrator),
        by their recorded job names."""
        now = self._clock.now()
        for record in found.running:
            assert record.job_name is not None
            flight = InFlight(record, record.job_name, now)
            if record.pruned_at is not None and self._early is not None:
                flight = await self._early.stop(flight, record.pruned_at)  # it may not have been
            self._t.inflight[record.job_name] = flight
        for record, state in found.ended:
            self._results.add(self._judge.finished(InFlight(record, state.name, now), state))
        self._t.pending += found.to_launch
        await self._results.flush()

    def _stop_reason(self) -> StopReason | None:
        """Why dispatching must stop now, if it must; remembered once it holds."""
        return self._judge.stop_reason(self._clock.now() - self._started_at, self._study.budget)

    def _room(self) -> int:
        """How many new trials the budget still allows."""
        return max(0, self._study.trial_limit - self._t.trials_total)

    def _may_ask(self) -> bool:
        """Whether a new trial may be asked now: the budget has room, no stop holds."""
        return self._room() > 0 and self._stop_reason() is None

    def _refills_ahead(self) -> bool:
        """Whether a job's end may still start another: no stop holds, and a trial is
        waiting or the budget has room."""
        t = self._t
        wanted = t.pending or t.ready or self._room() or self._paused()
        return self._stop_reason() is None and bool(wanted)

    def _paused(self) -> bool:
        """Whether trials paused here may yet be promoted (promotion sweeps)."""
        return self._promoter is not None and bool(self._promoter.paused)

    def _launchable(self) -> int:
        """How many launches may start now (0 once a stop holds)."""
        t = self._t
        if self._stop_reason() is not None:
            self._pools.release_all()
            return 0
        if t.capacity_wait:  # until a job ends, or the wait for a retry is over
            return 0
        wanted = len(t.pending) + len(t.ready) + self._room()
        if wanted == 0 and not self._paused():
            self._pools.release_all()  # nothing left to put on a pool: wait for none
        slots = self._study.budget.max_parallel - len(t.inflight) - self._pools.held
        return max(0, min(slots, wanted))

    def _promote(self) -> None:
        """Queue the paused trials the promotion rule picks now, one per free slot; once no
        new trial may start, the rule finishes the best (see :mod:`sweeper.promotion`)."""
        t, promoter = self._t, self._promoter
        if promoter is None or not promoter.paused or t.capacity_wait or self._stop_reason():
            return
        held = len(t.inflight) + self._pools.held + len(t.pending)
        finishing = self._room() == 0 and not t.ready
        free = self._study.budget.max_parallel - held
        t.pending += promoter.take(free, finishing, self._reporter.note)

    async def _fill(self) -> None:
        """Launch into every free slot: retries, resumed and promoted trials, pre-asked,
        then new."""
        self._promote()
        t, n = self._t, self._launchable()
        if n == 0:
            return
        known = [t.pending.popleft() for _ in range(min(n, len(t.pending)))]
        known += [t.ready.popleft() for _ in range(min(n - len(known), len(t.ready)))]
        new = min(n - len(known), self._room())
        t.trials_total += new
        try:
            async with asyncio.TaskGroup() as tg:
                for record in known:
                    tg.create_task(self._launch(record))
                for _ in range(new):
                    tg.create_task(self._launch(None))
        except ExceptionGroup as group:  # one launch's fatal error ends the sweep, as itself
            raise group.exceptions[0] from None

    async def _launch(self, record: TrialRecord | None) -> None:
        """Create a trial's job; a record without a job name gets one recorded first."""
        record = record or await self._asker.ask()
        if record is None:
            return
        if record.job_name is None:
            await store_rung(self._study, record)  # a promoted trial's rung, first
            name = self._job_name(record.number, record.attempt)
            await self._study.assign_job(
                record.number, name, record.attempt, record.on_demand, record.rung
            )
            record = dataclasses.replace(record, job_name=name)
        job = record.job_name
        assert job is not None
        if self.interrupted:  # not sent: the trial stays RUNNING and resume creates it
            return
        self._reporter.started(record.number, job, record.params)
        sent_at = self._clock.now()  # the job's age counts from before the request
        flight = InFlight(record, job, sent_at)
        extra: dict[str, Any] = {}
        for hook in self._hooks:
            await hook.prepare(record)  # nothing to do unless an earlier attempt failed
            extra |= hook.fields(record.number)
        try:
            flight = dataclasses.replace(flight, trial=await self._creator.create(record, extra))
        except CapacityError as exc:  # never a failure: the trial waits for capacity
            self._t.pending.appendleft(record)
            self._t.capacity_wait = True
            if not self._t.inflight:  # nothing will end to free it: try again later
                retry_at = self._quota.refused(exc.message, self._clock.now())
                self._t.capacity_retry_at = retry_at
                if retry_at is None:  # its trials stay RUNNING: a rerun creates their jobs
                    self._t.stop = StopReason.CAPACITY
            return
        except (BackendError, TransientError) as exc:
            verdict = self._judge.failed(flight, f"CreateTrainingJob failed: {exc}", {}, ran=False)
            await self._results.record(verdict)
            return
        self._quota.cleared()
        self._t.launched += 1
        self._t.inflight[job] = flight

    async def _poll(self) -> None:
        """One batched status call for every job in flight; settle the finished ones."""
        self._t.polls += 1
        jobs = [*self._t.inflight, *self._pools.jobs]
        try:
            states, _ = await asyncio.gather(self._backend.poll(jobs), self._read_budget())
        except TransientError:
            return  # retries are exhausted for this tick; the next tick tries again
        freed = self._pools.update(states, self._clock.now())
        finished = [
            (self._t.inflight.pop(name), state)
            for name, state in states.items()
            if state.status.is_terminal and name in self._t.inflight
        ]
        self._statuses = {n: s.secondary_status for n, s in states.items()}
        for flight, state in finished:
            self._results.add(self._judge.finished(flight, state))
            self._pools.ended(state, self._clock.now())
        if finished or freed:
            self._t.capacity_wait = False
            await self._fill()  # refill before storage writes: a slot never waits on them
        if self._early is not None:  # then the pruner, on the values printed since
            ended = [flight for flight, _ in finished]
            for flight in await self._early.check(list(self._t.inflight.values()), ended):
                self._t.inflight[flight.job] = flight
        self._reporter.progress(self._progress())

    def _progress(self) -> Progress:
        return self._t.progress(
            self._study.trial_limit,
            self._study.budget.max_parallel,
            self._planner,
            self._statuses,
            self._clock.now() - self._started_at,
        )

    async def _bookkeeping(self, deadline: float) -> None:
        """Record results and pre-ask trials, after the jobs just started are under way.

        The moments after a refill are the busiest (new processes, or on SageMaker new
        requests); storage work waits a tenth of a job's expected duration, within the
        wait for the next poll anyway, and gives way to a poll due for a job's end
        (:meth:`Pacing.writes_wait`), never to the lease's renewal. Once no end can be
        refilled (the budget is spent), seeing ends sooner gains nothing: results are
        written as they come, and the sweep ends one write after its last job.
        """
        expected = self._planner.expected
        if expected is not None and self._refills_ahead():
            now = self._clock.now()
            await self._sleep_until(now + min(0.1 * expected, (deadline - now) / 2))
            pending, patience = self._results.pending, 0.1 * expected
            if deadline < self._sharing.due and self._pace.writes_wait(
                self._clock.now(), deadline, pending, patience
            ):
                return
        start, pending = self._clock.now(), self._results.pending
        await self._results.flush()
        self._pace.wrote(self._clock.now() - start, pending)
        await self._share()
        await self._asker.prefetch(deadline, self._planner.expected, self._may_ask)
        await self._study.settle()  # once: a new database's upkeep, deferred from start-up

    async def _sleep_until(self, deadline: float) -> None:
        """Wait for ``deadline`` on the clock; an :meth:`interrupt` cuts one wait short."""
        if self._wake.is_set():
            self._wake.clear()
            return
        try:
            await first_of(self._clock.sleep(deadline - self._clock.now()), self._wake.wait())
        finally:
            self._wake.clear()
