"""Early stopping on virtual time: a fake backend whose jobs print a learning curve.

Each fake job prints ``loss=objective(x) + 1/(step + 1)`` five times over its 10 s, so
a trial far from x = 0.3 is visibly worse from its first values on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optuna.trial import TrialState

from sweeper.clock import VirtualClock
from sweeper.study import PRUNED_AT
from sweeper.types import JobStatus, OnExit, StopReason
from tests.unit.test_scheduler import FakeBackend, make_scheduler

MEDIAN = {"kind": "median", "n_startup_trials": 2, "n_warmup_steps": 1}


async def test_a_pruned_trial_has_its_job_stopped_and_is_told_pruned(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock)
    scheduler, study, events = make_scheduler(
        tmp_path, backend, clock, pruner=MEDIAN, max_trials=12, max_parallel=2
    )
    outcome = await scheduler.run()
    trials = await study.trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "the median rule stops some of twelve trials"
    assert outcome.completed + len(pruned) == 12 and outcome.failed == 0
    for t in pruned:
        job = backend.jobs[t.user_attrs["job_name"]]
        assert job.outcome == JobStatus.STOPPED  # its job was stopped early
        assert job.ends < job.created + 10.0
        step = t.user_attrs[PRUNED_AT]
        assert t.last_step == step and t.value == t.intermediate_values[step]
        assert ("pruned", t.number) in events.lines
    counts = await study.counts()
    assert (counts.pruned, counts.unlaunched) == (len(pruned), 0)
    assert counts.dispatched == 12  # pruned trials count toward the budget
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    assert all(len(t.intermediate_values) == 5 for t in completed)  # every value reported
    study.close()


async def test_a_trial_that_ends_before_the_stop_lands_is_complete(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock, stops_land=False)
    scheduler, study, _ = make_scheduler(
        tmp_path, backend, clock, pruner=MEDIAN, max_trials=12, max_parallel=2
    )
    outcome = await scheduler.run()
    assert backend.stops, "the pruner decided to stop some jobs"
    assert outcome.completed == 12  # each of them completed first: its result counts
    assert all(t.state == TrialState.COMPLETE for t in await study.trials())
    study.close()


async def test_a_crash_between_stop_and_tell_resumes_to_the_same_state(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    clock = VirtualClock()
    backend = FakeBackend(clock)
    scheduler, study, _ = make_scheduler(
        tmp_path, backend, clock, storage, pruner=MEDIAN, max_trials=12, max_parallel=2
    )
    # The first stop is sent, then the orchestrator goes away before it tells anything.
    backend.on_stop = lambda name: scheduler.interrupt(OnExit.LEAVE)
    first = await scheduler.run()
    assert first.stop_reason == StopReason.INTERRUPTED
    stopped = backend.stops[0]
    number = next(t.number for t in await study.trials() if t.user_attrs.get("job_name") == stopped)
    assert (await study.trials())[number].state == TrialState.RUNNING  # decided, not told
    study.close()

    backend.on_stop = lambda name: None
    creates = len(backend.creates)
    scheduler, study, _ = make_scheduler(
        tmp_path, backend, clock, storage, pruner=MEDIAN, max_trials=12, max_parallel=2
    )
    await scheduler.run()
    trial = (await study.trials())[number]
    assert trial.state == TrialState.PRUNED and PRUNED_AT in trial.user_attrs
    assert stopped not in backend.creates[creates:]  # not run again
    assert sum(c.startswith(f"quad-{number}-") for c in backend.creates) == 1
    assert (await study.counts()).dispatched == 12
    study.close()


@dataclass
class QuietAfterThree(FakeBackend):
    """Two jobs by creation: the first learns (loss 0.1, five values) and ends at 10 s;
    the second is hopeless (loss 5), prints three values in its first seconds, then
    nothing until it ends at 100 s."""

    def lines(self, name: str, after: float, until: float) -> list[str]:
        job, first = self.jobs[name], name == self.creates[0]
        at = [job.created + 1.0 + step for step in range(5 if first else 3)]
        loss = 0.1 if first else 5.0
        return [f"loss={loss + 0.01 * i}" for i, t in enumerate(at) if after < t <= until]


async def test_a_quiet_hopeless_trial_is_stopped_once_a_finished_trial_shows_it(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    ends = iter([10.0, 100.0])
    backend = QuietAfterThree(clock, duration=lambda x: next(ends))
    pruner = {"kind": "median", "n_startup_trials": 1, "n_warmup_steps": 0}
    scheduler, study, _ = make_scheduler(
        tmp_path, backend, clock, pruner=pruner, max_trials=2, max_parallel=2
    )
    await scheduler.run()
    # Its three values came while no trial had finished: nothing to judge them against.
    quiet = backend.jobs[backend.creates[1]]
    assert backend.stops == [backend.creates[1]]  # judged again once the first was told
    assert 10.0 < quiet.ends < 20.0 and quiet.outcome == JobStatus.STOPPED
    states = {t.user_attrs["job_name"]: t.state for t in await study.trials()}
    assert states == {
        backend.creates[0]: TrialState.COMPLETE,
        backend.creates[1]: TrialState.PRUNED,
    }
    study.close()
