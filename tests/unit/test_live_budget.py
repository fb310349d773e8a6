"""The live budget: ``sweep.py set`` parsing and checks, the study's record of it, and a
running sweep on virtual time taking it up at its next poll."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper import setting
from sweeper.clock import VirtualClock
from sweeper.config import Budget
from sweeper.errors import ConfigError
from sweeper.study import SweepStudy
from sweeper.study.budget import changes
from sweeper.types import StopReason
from tests.unit.test_scheduler import FakeBackend, FakeJob, make_scheduler


def _in_flight_at(jobs: list[FakeJob], t: float) -> int:
    return sum(j.created <= t < j.ends for j in jobs)


def _concurrency(backend: FakeBackend, before: float | None = None) -> int:
    """The most jobs in flight at any job's start (before ``before``, if given)."""
    jobs = list(backend.jobs.values())
    starts = [j.created for j in jobs if before is None or j.created < before]
    return max(_in_flight_at(jobs, t) for t in starts)


def test_parse_reads_numbers_none_and_default() -> None:
    asked = setting.parse(["max_parallel=8", "max_wall_seconds=1.5e3", "target=none"])
    assert asked.values == {"max_parallel": 8, "max_wall_seconds": 1500.0, "target": None}
    assert setting.parse(["max_trials=default"]).reset == ["max_trials"]


@pytest.mark.parametrize(
    ("texts", "said"),
    [
        ([], "at least one key=value"),
        (["max_parallel"], "expected key=value"),
        (["max_paralel=3"], "did you mean 'max_parallel'"),
        (["max_trials=a lot"], "expected a number or none"),
        (["max_trials=3", "max_trials=4"], "given twice"),
    ],
)
def test_parse_refuses_bad_assignments(texts: list[str], said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        setting.parse(texts)


async def test_set_budget_checks_values_as_the_space_file_does(tmp_path: Path) -> None:
    _, study, _ = make_scheduler(tmp_path, FakeBackend(VirtualClock()), VirtualClock())
    for values, said in [
        ({"max_parallel": 0}, "budget.max_parallel: must be >= 1"),
        ({"max_parallel": 2.5}, "budget.max_parallel: expected an integer"),
        ({"max_cost": 3.0}, "needs estimator.instance_price_per_hour"),
        ({"max_wall_seconds": -1.0}, "must be > 0"),
    ]:
        with pytest.raises(ConfigError, match=said):
            await study.set_budget(values, [])
    assert await study.budget_settings() == {}  # nothing was written
    study.close()


async def test_settings_outlive_the_process_and_default_gives_the_file_back(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    _, study, _ = make_scheduler(tmp_path, FakeBackend(VirtualClock()), VirtualClock(), url)
    await study.set_budget({"max_trials": 30, "patience": 5}, [])
    config = study._config
    study.close()
    again = SweepStudy.open(config, url)
    assert (again.budget.max_trials, again.budget.patience, again.budget.max_parallel) == (30, 5, 2)
    await again.set_budget({}, ["max_trials"])
    assert again.budget.max_trials == config.budget.max_trials == 4
    assert set(await again.budget_settings()) == {"patience"}
    again.close()


def test_changes_are_said_key_by_key() -> None:
    old, new = Budget(max_parallel=4), Budget(max_parallel=8, target=0.5)
    assert changes(old, new) == ["max_parallel 4 → 8", "target none → 0.5"]
    assert changes(old, old) == []


async def test_a_running_sweep_takes_up_a_raised_budget_at_its_next_poll(
    tmp_path: Path,
) -> None:
    """``set`` from another process (here: its own study on the same SQLite file) as the
    fourth job starts: 2 in flight before, 4 after, 12 trials in all."""
    clock, url = VirtualClock(), f"sqlite:///{tmp_path / 's.db'}"
    backend = FakeBackend(clock)
    scheduler, study, events = make_scheduler(
        tmp_path, backend, clock, url, max_trials=8, max_parallel=2
    )
    editor = SweepStudy.open(study._config, url)
    changed_at: list[float] = []

    def on_create(count: int) -> None:
        if count == 4:
            changed_at.append(clock.now())
            from sweeper.study import budget

            budget.write(editor.study, {"max_parallel": 4, "max_trials": 12})

    backend.on_create = on_create
    outcome = await scheduler.run()
    assert outcome.stop_reason == StopReason.BUDGET
    assert outcome.completed == 12 and len(backend.jobs) == 12
    assert _concurrency(backend, before=changed_at[0] + 1e-9) <= 2
    eighth = sorted(j.created for j in backend.jobs.values())[7]
    assert _concurrency(backend, before=eighth + 1e-9) == 4  # not only after the 8th trial
    notes = [text for text, n in events.lines if n == -1]
    assert "budget changed: max_trials 8 → 12, max_parallel 2 → 4" in notes
    editor.close()
    study.close()


async def test_a_lowered_max_parallel_leaves_running_jobs_alone(tmp_path: Path) -> None:
    clock, url = VirtualClock(), f"sqlite:///{tmp_path / 's.db'}"
    backend = FakeBackend(clock)
    scheduler, study, _ = make_scheduler(
        tmp_path, backend, clock, url, max_trials=8, max_parallel=4
    )
    editor = SweepStudy.open(study._config, url)
    changed_at: list[float] = []

    def on_create(count: int) -> None:
        if count == 4:
            changed_at.append(clock.now())
            from sweeper.study import budget

            budget.write(editor.study, {"max_parallel": 1})

    backend.on_create = on_create
    outcome = await scheduler.run()
    assert outcome.completed == 8 and not backend.stops  # none stopped
    jobs = list(backend.jobs.values())
    later = [j for j in jobs if j.created > changed_at[0]]
    assert later and all(_in_flight_at(jobs, j.created) == 1 for j in later)
    editor.close()
    study.close()


async def test_a_raised_max_failures_lets_a_stopped_sweep_go_on(tmp_path: Path) -> None:
    """A stop the budget decided is decided again under the new budget."""
    clock, url = VirtualClock(), f"sqlite:///{tmp_path / 's.db'}"
    backend = FakeBackend(clock, fails=lambda x: True)
    scheduler, study, _ = make_scheduler(
        tmp_path, backend, clock, url, max_trials=10, max_parallel=1, max_failures=2
    )
    editor = SweepStudy.open(study._config, url)

    def on_create(count: int) -> None:
        if count == 2:
            from sweeper.study import budget

            budget.write(editor.study, {"max_failures": 4})

    backend.on_create = on_create
    outcome = await scheduler.run()
    assert outcome.stop_reason == StopReason.FAILURES
    assert outcome.failed == 4
    editor.close()
    study.close()
