"""The scheduler on virtual time, against an in-memory fake of the JobBackend protocol."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from sweeper.aws.names import job_name
from sweeper.clock import VirtualClock
from sweeper.config import (
    Budget,
    Estimator,
    Goal,
    MetricDefinition,
    Objective,
    Param,
    ParamType,
    Pruner,
    PrunerKind,
    Sampler,
    SamplerKind,
    SweepConfig,
)
from sweeper.decisions import Policy
from sweeper.errors import BackendError, CapacityError
from sweeper.metrics import MetricReader
from sweeper.polling import PollTiming
from sweeper.promotion import Rungs
from sweeper.pruning import EarlyStopping
from sweeper.scheduler import Scheduler
from sweeper.study import SweepStudy
from sweeper.study.ownership import Leases
from sweeper.types import JobState, JobStatus, OnExit, Progress, StopReason, SweepOutcome
from tests.helpers import fake_request, objective

TIMING = PollTiming(min_interval=0.05, max_interval=2.0, ratio=0.25)


@dataclass
class FakeJob:
    x: float
    created: float
    ends: float
    outcome: JobStatus
    reported_done: bool = False
    pool: bool = False  # asked for a keep-alive: leaves a pool when it ends
    reused_by: str | None = None


@dataclass
class FakeBackend:
    """Jobs that take ``duration(x)`` virtual seconds; ``fails(x)`` decides the outcome."""

    clock: VirtualClock
    duration: Callable[[float], float] = lambda x: 10.0
    fails: Callable[[float], bool] = lambda x: False
    metric: str = "loss"
    reject_create: bool = False
    quota: int | None = None  # concurrent jobs: more answer ResourceLimitExceeded
    refuse_until: float = 0.0  # every create answers ResourceLimitExceeded until then
    reason: Callable[[str], str] = lambda job: "AlgorithmError: boom"
    on_create: Callable[[int], None] = lambda count: None
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    creates: list[str] = field(default_factory=list)
    polls: list[list[str]] = field(default_factory=list)
    most_in_flight: int = 0
    pool_lag: float = 0.0  # a pool is Available this long after its job ends
    warm_pool_quota: int | None = None  # 0: every keep-alive create is refused
    reused: list[str] = field(default_factory=list)  # jobs that started on a pool
    released: list[str] = field(default_factory=list)  # jobs whose pool was released
    curve: Callable[[float, int], float] = lambda x, step: objective(x) + 1.0 / (step + 1)
    steps: int = 5  # intermediate values each job prints, evenly over its run
    stops: list[str] = field(default_factory=list)
    stops_land: bool = True  # False: a job ends on its own before a stop reaches it
    on_stop: Callable[[str], None] = lambda name: None

    async def create(self, request: dict[str, Any]) -> None:
        if self.reject_create:
            raise BackendError("ValidationException", "bad request")
        name = request["TrainingJobName"]
        running = sum(self.clock.now() < j.ends for j in self.jobs.values())
        if (
            self.quota is not None and running >= self.quota
        ) or self.clock.now() < self.refuse_until:
            raise CapacityError(
                "ResourceLimitExceeded",
                f"The account-level service limit 'ml.m5.large for training job usage' is"
                f" {self.quota or 0} Instances, with current utilization of {running} Instances and a"
                " request delta of 1 Instances. Please use AWS Service Quotas to request an"
                " increase for this quota.",
            )
        keep_alive = "KeepAlivePeriodInSeconds" in request.get("ResourceConfig", {})
        if keep_alive and self.warm_pool_quota == 0:
            raise CapacityError(
                "ResourceLimitExceeded",
                "The account-level service limit 'ml.m5.large for training warm pool usage' is"
                " 0 Instances, with current utilization of 0 Instances and a request delta of 1"
                " Instances.",
            )
        self.creates.append(name)
        self.on_create(len(self.creates))
        if name in self.jobs:  # ResourceInUse: TrainingJobs.create adopts the job
            return
        x = float(request["HyperParameters"]["x"])
        now = self.clock.now()
        outcome = JobStatus.FAILED if self.fails(x) else JobStatus.COMPLETED
        job = FakeJob(x, now, now + self.duration(x), outcome, pool=keep_alive)
        self.jobs[name] = job
        free = [n for n, j in self.jobs.items() if self._pool(j) == "Available"]
        if keep_alive and free:
            self.jobs[free[0]].reused_by = name
            self.reused.append(name)
        in_flight = sum(not j.reported_done for j in self.jobs.values())
        self.most_in_flight = max(self.most_in_flight, in_flight)

    async def poll(self, names: Iterable[str]) -> dict[str, JobState]:
        names = list(names)
        self.polls.append(names)
        return {n: self._state(n) for n in names if n in self.jobs}

    async def release_pool(self, name: str) -> None:
        self.released.append(name)

    async def stop(self, name: str) -> None:
        job = self.jobs[name]
        self.stops.append(name)
        self.on_stop(name)
        if self.clock.now() < job.ends and self.stops_land:
            job.ends, job.outcome = self.clock.now(), JobStatus.STOPPED

    def lines(self, name: str, after: float, until: float) -> list[str]:
        """What the job printed in (after, until]: ``curve(x, step)`` at even intervals."""
        job = self.jobs[name]
        spacing = self.duration(job.x) / (self.steps + 1)
        out = []
        for step in range(self.steps):
            at = job.created + (step + 1) * spacing
            if after < at <= min(until, job.ends):
                out.append(f"loss={self.curve(job.x, step):.10f}")
        return out

    def _pool(self, job: FakeJob) -> str | None:
        if not job.pool:
            return None
        if job.reused_by:
            return "Reused"
        return "Available" if self.clock.now() >= job.ends + self.pool_lag else "InUse"

    def _state(self, name: str) -> JobState:
        job, now = self.jobs[name], self.clock.now()
        if now < job.ends:
            return JobState(name, JobStatus.IN_PROGRESS, "Training", warm_pool=self._pool(job))
        job.reported_done = True
        metrics = {self.metric: objective(job.x)} if job.outcome == JobStatus.COMPLETED else {}
        return JobState(
            name,
            job.outcome,
            str(job.outcome),
            failure_reason=self.reason(name) if job.outcome == JobStatus.FAILED else "",
            final_metrics=metrics,
            created=datetime.fromtimestamp(job.created, UTC),
            ended=datetime.fromtimestamp(job.ends, UTC),
            warm_pool=self._pool(job),
        )


class Events:
    def __init__(self) -> None:
        self.lines: list[tuple[str, int]] = []
        self.progresses: list[Progress] = []
        self.on_note: Callable[[str], None] = lambda text: None

    def started(self, number: int, job: str, params: dict[str, Any]) -> None:
        self.lines.append(("started", number))

    def finished(
        self,
        number: int,
        job: str,
        values: tuple[float, ...],
        seconds: float | None,
        feasible: bool = True,
    ) -> None:
        self.lines.append(("finished", number))

    def failed(self, number: int, job: str, reason: str) -> None:
        self.lines.append(("failed", number))

    def pruned(self, number: int, job: str, step: int, value: float) -> None:
        self.lines.append(("pruned", number))

    def note(self, text: str) -> None:
        self.lines.append((text, -1))
        self.on_note(text)

    def progress(self, progress: Progress) -> None:
        self.progresses.append(progress)


@dataclass
class FakeLines:
    """The LineSource over a FakeBackend: each job's new lines since the last read."""

    backend: FakeBackend
    read_until: dict[str, float] = field(default_factory=dict)
    calls: int = 0

    async def read(self, jobs: Iterable[str]) -> dict[str, list[str]]:
        self.calls += 1
        now, out = self.backend.clock.now(), {}
        for name in jobs:
            lines = self.backend.lines(name, self.read_until.get(name, -1.0), now)
            self.read_until[name] = now
            if lines:
                out[name] = lines
        return out


LOSS = Goal((Objective("loss", "minimize"),))
SEEDED_TPE = Sampler(SamplerKind.TPE, seed=7)


def make_scheduler(
    tmp_path: Path,
    backend: FakeBackend,
    clock: VirtualClock,
    storage: str = "",
    estimator: dict[str, Any] | None = None,
    pruner: dict[str, Any] | None = None,
    hooks: tuple[Any, ...] = (),
    observers: tuple[Any, ...] = (),
    goal: Goal = LOSS,
    sampler: Sampler = SEEDED_TPE,
    **budget: Any,
) -> tuple[Scheduler, SweepStudy, Events]:
    """A scheduler over the fake backend (no space file: the config is built in code);
    ``storage`` "" keeps the study in memory; ``estimator`` overrides Estimator fields;
    ``pruner`` is a pruner section (its values read from the fake jobs' lines)."""
    est = Estimator(
        entry_point="train.py",
        source_dir=tmp_path,
        metric_definitions=(MetricDefinition("loss", r"loss=([0-9.eE+-]+)"),),
        max_run=120,
    )
    options = dict(pruner or {})
    cfg = SweepConfig(
        path=tmp_path / "space.yaml",
        name="quad",
        goal=goal,
        space=(Param("x", ParamType.FLOAT, 0.0, 1.0),),
        estimator=dataclasses.replace(est, **(estimator or {})),
        budget=Budget(**({"max_trials": 4, "max_parallel": 2, "max_failures": 3} | budget)),
        sampler=sampler,
        pruner=Pruner(PrunerKind(options.pop("kind", "none")), options),
    )
    study = SweepStudy.open(cfg, storage=storage)
    events = Events()
    early = None
    if pruner and Rungs.of(cfg) is None:  # promotion pauses instead: it reads no lines
        metrics = MetricReader(cfg.estimator.metric_definitions)
        early = EarlyStopping(FakeLines(backend), metrics, "loss", study, backend, events)
    scheduler = Scheduler(
        Policy.of(cfg),
        study,
        backend,
        build_request=fake_request,
        job_name=lambda n, attempt: job_name(cfg.name, n, attempt),
        clock=clock,
        reporter=events,
        timing=TIMING,
        early=early,
        hooks=hooks,
        observers=observers,
    )
    return scheduler, study, events


async def _run(
    tmp_path: Path,
    backend: FakeBackend,
    clock: VirtualClock,
    estimator: dict[str, Any] | None = None,
    **budget: Any,
) -> tuple[SweepOutcome, SweepStudy, Events]:
    scheduler, study, events = make_scheduler(
        tmp_path, backend, clock, estimator=estimator, **budget
    )
    return await scheduler.run(), study, events


async def test_keeps_max_parallel_in_flight_and_refills_at_once(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock)
    outcome, study, _ = await _run(tmp_path, backend, clock, max_trials=12, max_parallel=3)
    assert outcome.completed == 12
    assert outcome.stop_reason == StopReason.BUDGET
    assert backend.most_in_flight == 3
    # 4 rounds of 10 s jobs. Only the first round's end is found late (nothing is known
    # about durations yet): at most a quarter of its age, the back-off before any end.
    assert 40.0 <= clock.now() <= 40.0 + 0.25 * 10 + 3 * TIMING.min_interval
    # After the first round every job starts the moment its predecessor's end is seen.
    starts = sorted(j.created for j in backend.jobs.values())
    ends = sorted(j.ends for j in backend.jobs.values())
    later_gaps = [s - e for s, e in zip(starts[6:], ends[3:9], strict=True)]
    assert max(later_gaps) <= TIMING.min_interval
    study.close()


async def test_polls_are_batched_one_call_for_all_jobs_in_flight(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock, duration=lambda x: 10.0 + x)  # slightly different ends
    outcome, study, _ = await _run(tmp_path, backend, clock, max_trials=20, max_parallel=4)
    assert outcome.polls == len(backend.polls)
    assert all(len(p) <= 4 for p in backend.polls)
    assert max(len(p) for p in backend.polls) == 4  # one call covered every job in flight
    # O(1) polls per trial: far fewer than a poll per job per tick would cost.
    assert len(backend.polls) / 20 < 4
    study.close()


async def test_values_come_from_the_jobs_final_metrics(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock)
    _, study, _ = await _run(tmp_path, backend, clock, max_trials=6, max_parallel=2)
    trials = await study.trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    for t in trials:
        assert t.value == objective(t.params["x"])
        assert t.user_attrs["job_name"] == f"quad-{t.number}-1"
    study.close()


async def test_failed_jobs_are_told_fail_and_max_failures_stops_dispatch(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock, fails=lambda x: True)
    outcome, study, events = await _run(
        tmp_path, backend, clock, max_trials=20, max_parallel=2, max_failures=3
    )
    assert outcome.stop_reason == StopReason.FAILURES
    trials = await study.trials()
    assert 3 <= len(trials) <= 4  # the jobs in flight when the third failed still finish
    assert all(t.state == TrialState.FAIL for t in trials)
    assert all(t.user_attrs["failure"] == "AlgorithmError: boom" for t in trials)
    assert ("failed", 0) in events.lines
    study.close()


async def test_a_job_without_the_objective_metric_fails_with_a_reason(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock, metric="other")
    _, study, _ = await _run(tmp_path, backend, clock, max_trials=2, max_parallel=2)
    for t in await study.trials():
        assert t.state == TrialState.FAIL
        assert "no value for objective metric 'loss'" in t.user_attrs["failure"]
    study.close()


async def test_a_refused_create_fails_the_trial_and_the_sweep_goes_on(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock, reject_create=True)
    outcome, study, _ = await _run(
        tmp_path, backend, clock, max_trials=10, max_parallel=1, max_failures=2
    )
    assert outcome.stop_reason == StopReason.FAILURES
    assert outcome.failed == 2
    trials = await study.trials()
    assert (
        "CreateTrainingJob failed: ValidationException: bad request"
        in trials[0].user_attrs["failure"]
    )
    study.close()


@pytest.mark.parametrize(
    ("target", "expected"), [(0.5, StopReason.TARGET), (None, StopReason.BUDGET)]
)
async def test_target_stops_dispatching(
    tmp_path: Path, target: float | None, expected: StopReason
) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock)
    budget: dict[str, Any] = {"max_trials": 8, "max_parallel": 1}
    if target is not None:
        budget["target"] = target  # loss <= 0.5 holds for every x in [0, 1]
    outcome, study, _ = await _run(tmp_path, backend, clock, **budget)
    assert outcome.stop_reason == expected
    assert outcome.completed == (1 if target is not None else 8)
    study.close()


async def test_an_early_stop_closes_pre_asked_trials_and_leaves_none_running(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock, duration=lambda x: 10.0 + x)
    outcome, study, _ = await _run(
        tmp_path, backend, clock, max_trials=40, max_parallel=3, target=0.01
    )
    assert outcome.stop_reason == StopReason.TARGET
    trials = await study.trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    unlaunched = [t for t in trials if t.user_attrs.get("job_name") not in backend.jobs]
    for t in unlaunched:
        assert t.state == TrialState.PRUNED
        assert t.user_attrs["pruned"] == "not launched: the sweep stopped (target reached)"
    assert len(trials) - len(unlaunched) == outcome.launched
    study.close()


async def test_pre_asked_trials_make_refills_immediate_and_respect_the_budget(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock, duration=lambda x: 10.0)
    outcome, study, _ = await _run(tmp_path, backend, clock, max_trials=9, max_parallel=3)
    assert outcome.launched == 9
    assert len(await study.trials()) == 9  # pre-asking never overshoots max_trials
    ends = sorted(j.ends for j in backend.jobs.values())
    later = sorted(j.created for j in backend.jobs.values())[3:]
    assert later[3:] == ends[3:6]  # from the second round on, no gap at all
    study.close()


class SlowRunMaker:
    """A request hook whose first prepare of each trial takes ``seconds`` of the clock's
    time (an Experiments run made over a slow link); later prepares are free."""

    def __init__(self, clock: VirtualClock, seconds: float) -> None:
        self.clock, self.seconds, self.made = clock, seconds, set[int]()

    async def prepare(self, record: Any) -> None:
        if record.number not in self.made:
            self.made.add(record.number)
            await self.clock.sleep(self.seconds)

    def fields(self, number: int) -> dict[str, Any]:
        return {}


async def test_slow_asks_are_still_made_ahead_of_the_jobs_they_replace(tmp_path: Path) -> None:
    """An ask longer than the wait for the next poll is made before that poll rather
    than after it: the refill never waits for a trial to be asked."""
    clock = VirtualClock()
    backend = FakeBackend(clock, duration=lambda x: 10.0 + x)  # staggered ends
    scheduler, study, _ = make_scheduler(
        tmp_path,
        backend,
        clock,
        hooks=(SlowRunMaker(clock, 0.4),),  # longer than the 0.05 * 10 s overdue polls
        max_trials=12,
        max_parallel=3,
    )
    outcome = await scheduler.run()
    assert outcome.completed == 12
    jobs = sorted(backend.jobs.values(), key=lambda j: j.created)
    ends = sorted(j.ends for j in jobs)
    # From the second round on, each job is created within a poll of a slot freeing:
    # never an ask (0.4 s) after it.
    gaps = [j.created - e for j, e in zip(jobs[3:], ends, strict=False)][3:]
    assert max(gaps) < 0.4
    study.close()


async def test_the_first_round_is_refilled_with_trials_asked_while_it_ran(
    tmp_path: Path,
) -> None:
    """Before any job has ended nothing says when one will, but the waits between the
    first round's polls grow with its age: the trials its ends need are asked in one of
    them, so each is replaced the moment a poll finds it ended, not an ask later."""
    clock = VirtualClock()
    backend = FakeBackend(clock, duration=lambda x: 10.0 + x)
    polled_at: list[float] = []
    poll = backend.poll

    async def timed(names: Iterable[str]) -> dict[str, JobState]:
        polled_at.append(clock.now())
        return await poll(names)

    backend.poll = timed  # type: ignore[method-assign]
    scheduler, study, _ = make_scheduler(
        tmp_path, backend, clock, hooks=(SlowRunMaker(clock, 0.4),), max_trials=6, max_parallel=3
    )
    outcome = await scheduler.run()
    assert outcome.completed == 6
    second_round = sorted(backend.jobs.values(), key=lambda j: j.created)[3:]
    assert all(j.created in polled_at for j in second_round)
    study.close()


async def test_a_quota_makes_trials_wait_for_capacity_not_fail(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock, quota=2)
    outcome, study, events = await _run(tmp_path, backend, clock, max_trials=8, max_parallel=4)
    assert outcome.completed == 8
    assert outcome.failed == 0
    assert backend.most_in_flight == 2
    said = [line for line, _ in events.lines if "ml.m5.large for training job usage" in line]
    assert said == [  # once, naming the quota to raise
        "quota 'ml.m5.large for training job usage' (now 2) is spent; request an increase in"
        " the Service Quotas console (Amazon SageMaker) under that name; trials wait until"
        " a job fits (none fails for it)"
    ]
    study.close()


async def test_with_nothing_in_flight_a_quota_refusal_waits_with_backoff(tmp_path: Path) -> None:
    """No trial fails for a quota: with nothing running to free capacity, the sweep tries
    again after 5, 10, 20, ... s, saying which quota, until a job fits."""
    clock = VirtualClock()
    backend = FakeBackend(clock, refuse_until=60.0)
    outcome, study, events = await _run(tmp_path, backend, clock, max_trials=4, max_parallel=2)
    assert (outcome.completed, outcome.failed) == (4, 0)
    assert outcome.stop_reason == StopReason.BUDGET
    waits = [line for line, _ in events.lines if "nothing is running to free it" in line]
    assert [w.rsplit("in ", 1)[1] for w in waits] == ["5 s", "10 s", "20 s", "40 s"]
    assert all("ml.m5.large for training job usage" in w for w in waits)
    assert backend.creates[0] == "quad-0-1"  # the first trial's job, created at last
    assert clock.now() >= 75.0  # 5 + 10 + 20 + 40: the first try after the quota freed up
    study.close()


async def test_refusals_past_the_bound_stop_the_sweep_and_a_rerun_goes_on(
    tmp_path: Path,
) -> None:
    """Refused for longer than the bound, the sweep stops with its trials kept RUNNING
    (none failed); the next run creates their jobs."""
    clock = VirtualClock()
    backend = FakeBackend(clock, refuse_until=10_000.0)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    scheduler, study, events = make_scheduler(
        tmp_path, backend, clock, storage=storage, max_trials=3, max_parallel=2
    )
    outcome = await scheduler.run()
    assert outcome.stop_reason == StopReason.CAPACITY
    assert (outcome.completed, outcome.failed) == (0, 0)
    assert [t.state.name for t in await study.trials()] == ["RUNNING", "RUNNING"]
    assert "run the same command again" in events.lines[-1][0]
    study.close()
    backend.refuse_until = 0.0  # the quota was raised
    rerun, again, _ = make_scheduler(
        tmp_path, backend, clock, storage=storage, max_trials=3, max_parallel=2
    )
    outcome = await rerun.run()
    assert (outcome.completed, outcome.failed) == (3, 0)
    assert sorted(backend.creates) == ["quad-0-1", "quad-1-1", "quad-2-1"]
    again.close()


WARM = {"keep_alive_period_in_seconds": 60}


async def test_a_replacement_waits_for_the_freed_pool_and_takes_it(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock, pool_lag=3.0)
    outcome, study, _ = await _run(tmp_path, backend, clock, WARM, max_trials=8, max_parallel=2)
    assert outcome.completed == 8
    assert backend.most_in_flight == 2  # a held slot is not an extra job
    assert len(backend.reused) == 6  # every job after the first round took a pool
    last_end = max(j.ends for j in backend.jobs.values())
    assert clock.now() < last_end + 3.0  # the last pools are waited for by nothing
    ends = sorted(j.ends for j in backend.jobs.values())
    later = sorted(j.created for j in backend.jobs.values())[2:]
    for created, ended in zip(later, ends, strict=False):
        # after the pool turned Available (3 s), seen within one pool poll (0.1 s)
        assert ended + 3.0 <= created <= ended + 3.0 + 0.1 + 1e-6
    study.close()


async def test_a_pool_that_never_comes_holds_a_slot_for_a_bounded_time(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock, pool_lag=1e9)
    outcome, study, _ = await _run(tmp_path, backend, clock, WARM, max_trials=4, max_parallel=2)
    assert outcome.completed == 4 and backend.reused == []
    second = sorted(j.created for j in backend.jobs.values())[2:]
    assert all(c >= 10.0 + 10.0 for c in second)  # the job (10 s), then the wait (10 s)
    # counted from when the poll saw the job end (at most max_interval late)
    assert all(c <= 10.0 + TIMING.max_interval + 10.0 + 0.1 for c in second)
    study.close()


async def test_a_warm_pool_quota_of_0_runs_every_trial_without_pools(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock, warm_pool_quota=0)
    outcome, study, events = await _run(
        tmp_path, backend, clock, WARM, max_trials=6, max_parallel=3
    )
    assert (outcome.completed, outcome.failed) == (6, 0)
    assert not any(j.pool for j in backend.jobs.values())
    said = [line for line, _ in events.lines if "warm pool usage" in line]
    assert len(said) == 1 and "the sweep goes on without warm pools" in said[0]
    study.close()


@pytest.mark.parametrize(("keep", "released"), [(False, 3), (True, 0)])
async def test_stopping_jobs_on_exit_releases_their_pools_first(
    tmp_path: Path, keep: bool, released: int
) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock)
    scheduler, study, _ = make_scheduler(
        tmp_path,
        backend,
        clock,
        estimator=WARM | {"keep_pools_after_sweep": keep},
        max_trials=9,
        max_parallel=3,
    )
    backend.on_create = lambda count: scheduler.interrupt(OnExit.STOP) if count == 3 else None
    outcome = await scheduler.run()
    assert outcome.stop_reason == StopReason.INTERRUPTED
    assert len(backend.released) == released
    assert sorted(backend.released) == (sorted(outcome.in_flight) if released else [])
    study.close()


@dataclass
class Recorder:
    """A request hook and an observer, as an Experiments or MLflow tracker is both."""

    prepared: list[int] = field(default_factory=list)
    outcomes: list[tuple[int, float | None]] = field(default_factory=list)

    async def prepare(self, record: Any) -> None:
        self.prepared.append(record.number)

    def fields(self, number: int) -> dict[str, Any]:
        return {"ExperimentConfig": {"RunName": f"trial-{number}"}}

    async def recorded(self, outcome: Any) -> None:
        self.outcomes.append((outcome.trial.number, outcome.values))


async def test_hooks_add_to_each_request_and_observers_learn_each_outcome_once(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    seen: list[dict[str, Any]] = []
    backend = FakeBackend(clock, fails=lambda x: x > 0.8)
    create = backend.create

    async def spy(request: dict[str, Any]) -> None:
        seen.append(request)
        await create(request)

    backend.create = spy  # type: ignore[method-assign]
    recorder = Recorder()
    scheduler, study, _ = make_scheduler(
        tmp_path,
        backend,
        clock,
        hooks=(recorder,),
        observers=(recorder,),
        max_trials=6,
        max_parallel=2,
        max_failures=6,
    )
    await scheduler.run()
    names = sorted(r["ExperimentConfig"]["RunName"] for r in seen)
    assert names == sorted(f"trial-{n}" for n in set(recorder.prepared))  # prepared first
    trials = {t.number: t for t in await study.trials()}
    told = sorted((n, tuple(t.values) if t.values else None) for n, t in trials.items())
    assert sorted(recorder.outcomes) == told
    study.close()


async def test_a_place_given_back_at_the_end_is_still_run(tmp_path: Path) -> None:
    """Another orchestrator's ask, cut short before it sampled or claimed its trial,
    holds a place in the budget while that orchestrator may still be asking it; once
    none asks, the trial is closed unlaunched and its place is used: the budget is
    exact."""
    clock = VirtualClock()
    url = f"sqlite:///{tmp_path / 'study.db'}"
    other = Leases(sa.create_engine(url), "quad", "elsewhere:1:x", where="elsewhere")

    def orphan(count: int) -> None:
        if count == 1:  # a trial with no parameters, no claim, no job: RUNNING
            other.join()  # its orchestrator, asking
            optuna.load_study(study_name="quad", storage=url).ask()

    backend = FakeBackend(clock, on_create=orphan)
    scheduler, study, events = make_scheduler(
        tmp_path, backend, clock, storage=url, max_trials=4, max_parallel=2
    )
    events.on_note = lambda text: other.leave() if "waiting for" in text else None
    outcome = await scheduler.run()
    trials = await study.trials()
    assert outcome.completed == 4
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 4
    unlaunched = [t.user_attrs.get("pruned", "") for t in trials if t.state == TrialState.PRUNED]
    assert any("interrupted" in reason for reason in unlaunched)
    study.close()


async def test_a_trial_an_earlier_version_failed_on_a_quota_runs_again(tmp_path: Path) -> None:
    """Earlier versions failed a trial whose job a quota refused with nothing running;
    with max_failures reached that way, a rerun did nothing. Now its parameters run again
    as a new trial, and it counts as neither a failure nor a place in the budget."""
    clock = VirtualClock()
    backend = FakeBackend(clock)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    _, study, _ = make_scheduler(tmp_path, backend, clock, storage=storage)
    study.close()
    old = optuna.load_study(study_name="quad", storage=storage)
    trial = old.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    trial.set_user_attr("failure", "CreateTrainingJob failed: ResourceLimitExceeded: no room")
    old.tell(trial, state=TrialState.FAIL)
    x = trial.params["x"]
    said = []
    for _ in range(2):  # the second run finds nothing more to requeue
        scheduler, study, events = make_scheduler(
            tmp_path, backend, clock, storage=storage, max_trials=3, max_failures=1
        )
        outcome = await scheduler.run()
        counts = await study.counts()
        study.close()
        said.append([line for line, _ in events.lines if "quota refusal" in line])
    assert said == [["trial 0 failed on a quota refusal: it runs again"], []]
    assert outcome.stop_reason == StopReason.BUDGET
    assert (counts.complete, counts.failed, counts.dispatched) == (3, 0, 3)
    assert backend.jobs["quad-1-1"].x == x  # the requeued trial, first asked
    assert len(backend.creates) == 3
