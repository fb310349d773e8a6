"""Resume and shutdown on virtual time: reconcile, retries, --on-exit, changed space files."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweeper import config
from sweeper.clock import VirtualClock
from sweeper.decisions import Policy
from sweeper.errors import ConfigError
from sweeper.scheduler import Scheduler
from sweeper.study import SweepStudy
from sweeper.study.spec import SPEC
from sweeper.types import JobStatus, OnExit, StopReason
from tests.helpers import fake_request, objective, space_doc, write_sweep
from tests.unit.test_scheduler import TIMING, Events, FakeBackend, make_scheduler


def _storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


async def _interrupted_run(
    tmp_path: Path, backend: FakeBackend, clock: VirtualClock, on_exit: OnExit, after: int
) -> list[str]:
    """Run a 9-trial, P=3 sweep and interrupt it once ``after`` jobs were created."""
    scheduler, study, _ = make_scheduler(
        tmp_path, backend, clock, _storage(tmp_path), max_trials=9, max_parallel=3
    )
    backend.on_create = lambda count: scheduler.interrupt(on_exit) if count == after else None
    outcome = await scheduler.run()
    study.close()
    assert outcome.stop_reason == StopReason.INTERRUPTED
    return outcome.in_flight


async def _resume(tmp_path: Path, backend: FakeBackend, clock: VirtualClock) -> SweepStudy:
    backend.on_create = lambda count: None
    scheduler, study, _ = make_scheduler(
        tmp_path, backend, clock, _storage(tmp_path), max_trials=9, max_parallel=3
    )
    outcome = await scheduler.run()
    assert outcome.stop_reason == StopReason.BUDGET
    return study


async def test_leave_then_resume_reattaches_jobs_without_duplicates(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock)
    in_flight = await _interrupted_run(tmp_path, backend, clock, OnExit.LEAVE, after=5)
    # Left running, as on SageMaker; the sixth create was never sent after the interrupt.
    assert in_flight == ["quad-3-1", "quad-4-1"]
    study = await _resume(tmp_path, backend, clock)
    trials = await study.trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 9
    assert len(backend.creates) == len(set(backend.creates)) == 9  # no job created twice
    for t in trials:
        assert t.value == objective(t.params["x"])
    study.close()


async def test_a_trial_whose_job_was_never_created_is_created_with_its_recorded_name(
    tmp_path: Path,
) -> None:
    cfg = config.load(write_sweep(tmp_path, space_doc(budget={"max_trials": 2})))
    crashed = SweepStudy.open(cfg, storage=_storage(tmp_path))
    record = await crashed.ask(lambda n, attempt: f"quad-{n}-{attempt}")  # then "crash"
    crashed.close()
    clock = VirtualClock()
    backend = FakeBackend(clock)
    scheduler, study, _ = make_scheduler(
        tmp_path, backend, clock, _storage(tmp_path), max_trials=2, max_parallel=2
    )
    await scheduler.run()
    assert backend.creates[0] == record.job_name == "quad-0-1"
    assert [t.state for t in await study.trials()] == [TrialState.COMPLETE] * 2
    study.close()


async def test_platform_failures_are_retried_and_script_failures_are_not(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(
        clock,
        fails=lambda x: True,
        reason=lambda job: (
            "InternalServerError: the host died"
            if job.endswith("-1")
            else "AlgorithmError: ExitCode 1"
        ),
    )
    scheduler, study, _ = make_scheduler(tmp_path, backend, clock, max_trials=1, max_parallel=1)
    await scheduler.run()
    assert backend.creates == ["quad-0-1", "quad-0-2"]  # retried once, then a script error
    (trial,) = await study.trials()
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["failure"] == "AlgorithmError: ExitCode 1"
    assert trial.user_attrs["attempt"] == 2
    assert trial.user_attrs["job_name"] == "quad-0-2"
    study.close()


async def test_platform_failures_give_up_after_three_attempts(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock, fails=lambda x: True, reason=lambda job: "InternalServerError: x")
    scheduler, study, _ = make_scheduler(tmp_path, backend, clock, max_trials=1, max_parallel=1)
    await scheduler.run()
    assert backend.creates == ["quad-0-1", "quad-0-2", "quad-0-3"]
    assert (await study.trials())[0].state == TrialState.FAIL
    study.close()


async def test_stop_on_exit_then_resume_reruns_the_stopped_trials(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock)
    in_flight = await _interrupted_run(tmp_path, backend, clock, OnExit.STOP, after=4)
    assert all(backend.jobs[name].outcome == JobStatus.STOPPED for name in in_flight)
    study = await _resume(tmp_path, backend, clock)
    trials = await study.trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 9
    stopped = {int(name.split("-")[1]) for name in in_flight}
    for t in trials:
        assert t.user_attrs["attempt"] == (2 if t.number in stopped else 1)
    study.close()


async def test_wait_on_exit_finishes_the_jobs_in_flight_and_starts_none(tmp_path: Path) -> None:
    clock = VirtualClock()
    backend = FakeBackend(clock)
    in_flight = await _interrupted_run(tmp_path, backend, clock, OnExit.WAIT, after=4)
    assert in_flight == []
    assert len(backend.creates) == 4
    _, study, _ = make_scheduler(
        tmp_path, backend, clock, _storage(tmp_path), max_trials=9, max_parallel=3
    )  # the same sweep, opened again
    states = [t.state for t in await study.trials()]
    assert states.count(TrialState.COMPLETE) == 4
    assert TrialState.FAIL not in states
    study.close()


async def test_a_resumed_seeded_sweep_does_not_replay_its_first_configurations(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    first, study, _ = make_scheduler(
        tmp_path, FakeBackend(clock), clock, _storage(tmp_path), max_trials=4, max_parallel=2
    )
    await first.run()
    study.close()
    more, study, _ = make_scheduler(
        tmp_path, FakeBackend(clock), clock, _storage(tmp_path), max_trials=8, max_parallel=2
    )
    await more.run()  # a raised max_trials continues the same sweep
    xs = [t.params["x"] for t in await study.trials()]
    assert len(xs) == 8
    assert xs[4:] != xs[:4]
    assert len(set(xs)) == 8
    study.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"objective": {"metric": "loss", "direction": "maximize"}},
            "objective.direction was 'minimize', now 'maximize'",
        ),
        (
            {"space": {"x": {"type": "float", "low": 0.0, "high": 2.0}}},
            "space.x.high was 1.0, now 2.0",
        ),
        (
            {
                "space": {
                    "x": {"type": "float", "low": 0.0, "high": 1.0},
                    "z": {"type": "int", "low": 1, "high": 3},
                }
            },
            "space.z was added",
        ),
    ],
)
def test_a_changed_space_file_is_refused_naming_the_change(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    SweepStudy.open(config.load(write_sweep(tmp_path, space_doc())), _storage(tmp_path)).close()
    changed = config.load(write_sweep(tmp_path, space_doc(**change)))
    with pytest.raises(ConfigError, match="the space file no longer matches sweep 'quad'") as err:
        SweepStudy.open(changed, _storage(tmp_path))
    assert message in str(err.value)


def test_budget_and_estimator_changes_are_allowed(tmp_path: Path) -> None:
    SweepStudy.open(config.load(write_sweep(tmp_path, space_doc())), _storage(tmp_path)).close()
    doc = space_doc(budget={"max_trials": 50, "max_parallel": 8})
    doc["estimator"]["hyperparameters"] = {"y": 1}
    SweepStudy.open(config.load(write_sweep(tmp_path, doc)), _storage(tmp_path)).close()


async def test_a_trial_whose_sampling_was_cut_short_is_pruned_and_not_counted(
    tmp_path: Path,
) -> None:
    SweepStudy.open(config.load(write_sweep(tmp_path, space_doc())), _storage(tmp_path)).close()
    optuna.load_study(study_name="quad", storage=_storage(tmp_path)).ask()  # no params: "killed"
    clock = VirtualClock()
    backend = FakeBackend(clock)
    scheduler, study, _ = make_scheduler(
        tmp_path, backend, clock, _storage(tmp_path), max_trials=3, max_parallel=3
    )
    await scheduler.run()
    trials = await study.trials()
    assert trials[0].state == TrialState.PRUNED
    assert trials[0].user_attrs["pruned"] == "not launched: its sampling was interrupted"
    assert [t.state for t in trials[1:]] == [TrialState.COMPLETE] * 3  # the budget is intact
    assert "quad-0-1" not in backend.creates
    study.close()


async def test_a_resumed_grid_sweep_never_repeats_a_grid_point(tmp_path: Path) -> None:
    doc = space_doc(
        sampler={"kind": "grid"},
        budget={"max_trials": 50, "max_parallel": 2},
        space={"x": {"type": "float", "values": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}},
    )
    cfg = config.load(write_sweep(tmp_path, doc))
    clock = VirtualClock()
    backend = FakeBackend(clock)
    for interrupt_at in (3, None):  # interrupted with trials in flight, then resumed
        study = SweepStudy.open(cfg, storage=_storage(tmp_path))
        scheduler = Scheduler(
            Policy.of(cfg),
            study,
            backend,
            build_request=fake_request,
            job_name=lambda n, attempt: f"quad-{n}-{attempt}",
            clock=clock,
            reporter=Events(),
            timing=TIMING,
        )
        backend.on_create = lambda count, s=scheduler, at=interrupt_at: (
            s.interrupt(OnExit.LEAVE) if count == at else None
        )
        await scheduler.run()
        study.close()
    study = SweepStudy.open(cfg, storage=_storage(tmp_path))
    xs = sorted(t.params["x"] for t in await study.trials() if t.state == TrialState.COMPLETE)
    assert xs == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # every point once, none twice
    assert len(set(backend.creates)) == len(backend.creates) == 6
    study.close()


def test_a_reader_opens_a_study_created_a_moment_ago_without_writing_to_it(
    tmp_path: Path,
) -> None:
    """The window in which another process has created the study but not yet stored
    its spec: a read-only open (status, report, sweeper.open) reads it, writes nothing."""
    loaded = config.load(write_sweep(tmp_path, space_doc()))
    database = Path(_storage(tmp_path).removeprefix("sqlite:///"))
    database.touch()  # made, not filled in yet
    with pytest.raises(ConfigError, match=r"no sweep named 'quad' in .* yet"):
        SweepStudy.open(loaded, _storage(tmp_path), create=False, read_only=True)
    optuna.create_study(storage=_storage(tmp_path), study_name=loaded.name)  # no spec yet
    reader = SweepStudy.open(loaded, _storage(tmp_path), create=False, read_only=True)
    reader.close()
    assert SPEC not in optuna.load_study(study_name="quad", storage=_storage(tmp_path)).user_attrs
    SweepStudy.open(loaded, _storage(tmp_path)).close()  # the writer stores it
    assert SPEC in optuna.load_study(study_name="quad", storage=_storage(tmp_path)).user_attrs
