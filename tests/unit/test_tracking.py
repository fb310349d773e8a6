"""The Experiments tracker: SDK naming, sharding, overflow, and failures that lose nothing.

An in-memory fake of the Experiments API (our own, not a mock of boto) keeps run groups
with a quota and can fail on demand; the study is a real SQLite study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweeper import config
from sweeper.errors import CapacityError, TransientError
from sweeper.study import JOB_NAME, SweepStudy
from sweeper.tracking.experiments import Tracker
from sweeper.tracking.series import JobSeries
from sweeper.types import Point, TrialResult
from tests.helpers import space_doc, write_sweep


class FakeExperiments:
    """Run groups with a per-group quota; ``failing`` calls raise TransientError."""

    def __init__(self, quota: int = 50) -> None:
        self.quota = quota
        self.failing = 0
        self.groups: dict[str, list[str]] = {}
        self.runs: dict[str, dict[str, Any]] = {}

    def _maybe_fail(self) -> None:
        if self.failing:
            self.failing -= 1
            raise TransientError("ThrottlingException: Rate exceeded")

    async def ensure_experiment(self, name: str, description: str) -> None:
        self._maybe_fail()

    async def ensure_run_group(self, experiment: str) -> None:
        self._maybe_fail()
        self.groups.setdefault(experiment, [])

    async def create_run(self, component: str, run: str, params: dict[str, Any]) -> None:
        self._maybe_fail()
        self.runs.setdefault(component, {"params": params})

    async def associate(self, component: str, experiment: str) -> None:
        self._maybe_fail()
        if len(self.groups[experiment]) >= self.quota:
            raise CapacityError("ResourceLimitExceeded", "The account-level service limit ...")
        self.groups[experiment].append(component)

    async def delete_run(self, component: str) -> None:
        self.runs.pop(component, None)

    async def update_run(self, component: str, **fields: Any) -> None:
        self._maybe_fail()
        self.runs[component].update(fields)

    async def put_metrics(self, component: str, series: list[Point]) -> None:
        self._maybe_fail()
        self.runs[component]["series"] = series


class FakeLogs:
    async def events(self, job: str) -> list[tuple[str, list[tuple[int, str]]]]:
        lines = ["epoch=0 loss=0.5", "epoch=1 loss=0.25", "loss=0.125"]
        return [(f"{job}/algo-1-1", [(1_000 * i, line) for i, line in enumerate(lines)])]


def _study(tmp_path: Path, **experiment: Any) -> tuple[SweepStudy, config.SweepConfig]:
    doc = space_doc(experiment={"name": "My_Sweep", **experiment}, budget={"max_trials": 20})
    doc["estimator"]["hyperparameters"] = {"epochs": 3}
    cfg = config.load(write_sweep(tmp_path, doc))
    study = SweepStudy.open(cfg, storage=f"sqlite:///{tmp_path / 'study.db'}")
    return study, cfg


async def _finish_trials(study: SweepStudy, tracker: Tracker, n: int) -> None:
    for _ in range(n):
        record = await study.ask(lambda number, attempt: f"quad-{number}-{attempt}")
        assert record is not None
        await tracker.begin(record)
        attrs = {"job_status": "Completed", "final_metrics": {"loss": 0.125}}
        await study.tell_complete(record.number, (0.125,), attrs)
        tracker.enqueue(
            TrialResult(record.number, record.params, True, {**attrs, JOB_NAME: record.job_name})
        )
    tracker.close()
    await tracker.drain()


def _tracker(
    api: FakeExperiments, study: SweepStudy, cfg: config.SweepConfig, notes: list[str]
) -> Tracker:
    series = JobSeries(cfg.estimator.metric_definitions, FakeLogs())  # type: ignore[arg-type]
    return Tracker(
        api,  # type: ignore[arg-type]
        series,
        study,
        cfg,
        lambda job: f"s3://b/{job}/model.tar.gz",
        notes.append,
    )


async def test_runs_are_sharded_by_trial_number_with_sdk_names(tmp_path: Path) -> None:
    study, cfg = _study(tmp_path, runs_per_experiment=3)
    api, notes = FakeExperiments(), []
    tracker = _tracker(api, study, cfg, notes)
    await _finish_trials(study, tracker, 7)
    assert api.groups == {
        "my-sweep": ["my-sweep-trial-0", "my-sweep-trial-1", "my-sweep-trial-2"],
        "my-sweep-2": ["my-sweep-2-trial-3", "my-sweep-2-trial-4", "my-sweep-2-trial-5"],
        "my-sweep-3": ["my-sweep-3-trial-6"],
    }
    assert tracker.experiment_config(4) == {
        "ExperimentName": "my-sweep-2",
        "TrialName": "Default-Run-Group-my-sweep-2",
        "RunName": "my-sweep-2-trial-4",
    }
    run = api.runs["my-sweep-trial-0"]
    assert set(run["params"]) == {"x", "epochs"}
    assert run["Status"] == {"PrimaryStatus": "Completed"}
    assert [(p.metric, p.step, p.value) for p in run["series"]] == [
        ("loss", 0, 0.5),
        ("loss", 1, 0.25),
        ("loss", 2, 0.125),
    ]
    assert all(r["recorded"] for r in (await study.runs()).values())
    assert notes == []


async def test_a_full_run_group_moves_the_run_to_the_next_experiment(tmp_path: Path) -> None:
    study, cfg = _study(tmp_path)
    api, notes = FakeExperiments(quota=2), []
    await _finish_trials(study, _tracker(api, study, cfg, notes), 5)
    assert {k: len(v) for k, v in api.groups.items()} == {
        "my-sweep": 2,
        "my-sweep-2": 2,
        "my-sweep-3": 1,
    }
    assert sorted(api.runs) == sorted(
        c for group in api.groups.values() for c in group
    )  # none orphaned
    assert any("my-sweep is full" in n for n in notes)


async def test_failed_recording_loses_nothing_and_completes_on_the_next_run(tmp_path: Path) -> None:
    study, cfg = _study(tmp_path)
    broken, notes = FakeExperiments(), []
    broken.failing = 10_000  # every Experiments call fails (after its retries)
    tracker = _tracker(broken, study, cfg, notes)
    await _finish_trials(study, tracker, 4)
    assert [t.value for t in await study.trials()] == [0.125] * 4  # every result is kept
    assert tracker.experiment_config(0) is None  # so jobs are created without one
    assert len(notes) == 8 and "Rate exceeded" in notes[0]

    healthy = FakeExperiments()
    again = _tracker(healthy, study, cfg, [])
    assert await again.catch_up() == 4
    again.close()
    await again.drain()
    assert sorted(healthy.groups["my-sweep"]) == [f"my-sweep-trial-{n}" for n in range(4)]
    assert all(r["recorded"] for r in (await study.runs()).values())
    assert await _tracker(healthy, study, cfg, []).catch_up() == 0  # nothing left to do
