"""The MLflow tracker on a real local MLflow store (SQLite): a parent run and nested
trial runs with params, step-wise series and statuses, the best trial kept current,
catch-up after a crash without a second run, and errors that cost nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from sweeper import config
from sweeper.recording import Outcome
from sweeper.study import JOB_NAME, SweepStudy
from sweeper.tracking.mlflow import MlflowTracker
from sweeper.tracking.mlflow_store import MlflowStore
from sweeper.tracking.mlflow_worker import InThread, MlflowCalls
from sweeper.tracking.series import JobSeries
from sweeper.tracking.setup import start_mlflow
from tests.helpers import free_port, space_doc, write_sweep

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is part of `test`")

ARN = "arn:aws:sagemaker:us-east-1:111122223333:mlflow-tracking-server/team"


class FakeLogs:
    """A job's log: three values of loss, the last one the final."""

    async def events(self, job: str) -> list[tuple[str, list[tuple[int, str]]]]:
        lines = ["epoch=0 loss=0.5", "epoch=1 loss=0.25", "loss=0.125"]
        return [(f"{job}/algo-1-1", [(1_000 * i, line) for i, line in enumerate(lines)])]


def _config(tmp_path: Path, **mlflow_section: Any) -> config.SweepConfig:
    doc = space_doc(budget={"max_trials": 20})
    doc["estimator"]["hyperparameters"] = {"epochs": 3}
    doc["tracking"] = {"experiments": False, "mlflow": mlflow_section}
    return config.load(write_sweep(tmp_path, doc))


class BrokenStore(MlflowStore):
    """MLflow that takes runs but fails to end them (a server that went away)."""

    def end(self, run_id: str, status: str, end_ms: int | None = None) -> None:
        raise ConnectionError("Connection refused")


def _tracker(
    cfg: config.SweepConfig,
    study: SweepStudy,
    notes: list[str],
    store_type: type[MlflowStore] = MlflowStore,
) -> MlflowTracker:
    assert cfg.tracking.mlflow is not None
    uri = f"sqlite:///{cfg.path.parent / 'mlflow.db'}"
    return _tracker_on(InThread(store_type(uri, cfg.tracking.mlflow.experiment)), cfg, study, notes)


def _tracker_on(
    store: MlflowCalls, cfg: config.SweepConfig, study: SweepStudy, notes: list[str]
) -> MlflowTracker:
    series = JobSeries(cfg.estimator.metric_definitions, FakeLogs())  # type: ignore[arg-type]
    return MlflowTracker(
        store,
        cfg,
        study,
        series,
        notes.append,
        lambda job: None,
        lambda job: f"s3://b/{job}/model.tar.gz",
    )


async def _finish(study: SweepStudy, tracker: MlflowTracker, values: list[float | None]) -> None:
    """Run trials through ask, prepare and tell; ``None`` fails one."""
    for value in values:
        record = await study.ask(lambda number, attempt: f"quad-{number}-{attempt}")
        assert record is not None
        await tracker.prepare(record)
        attrs = {"job_status": "Completed" if value is not None else "Failed", "job_ended": 5.0}
        if value is None:
            await study.tell_failed(record.number, "AlgorithmError: exit 3", attrs)
        else:
            await study.tell_complete(record.number, (value,), attrs)
        values = None if value is None else (value,)
        await tracker.recorded(Outcome(record, values, "AlgorithmError: exit 3", attrs))


def _runs(cfg: config.SweepConfig) -> tuple[Any, list[Any]]:
    client = mlflow.tracking.MlflowClient(f"sqlite:///{cfg.path.parent / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(cfg.name)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags["sweeper.role"] == "sweep"]
    assert len(parents) == 1
    nested = sorted(
        (r for r in runs if r.data.tags["sweeper.role"] == "trial"),
        key=lambda r: int(r.data.tags["sweeper.trial"]),
    )
    return client, [parents[0], *nested]


async def test_a_parent_run_and_a_nested_run_per_trial_with_series_and_statuses(
    tmp_path: Path,
) -> None:
    cfg = _config(tmp_path)
    study = SweepStudy.open(cfg, storage=f"sqlite:///{tmp_path / 'study.db'}")
    notes: list[str] = []
    tracker = _tracker(cfg, study, notes)
    assert await tracker.start() == 0
    await _finish(study, tracker, [0.5, None, 0.25, 0.75])
    tracker.close()
    await tracker.drain()
    await tracker.finish(interrupted=False)

    client, (parent, *trials) = _runs(cfg)
    assert notes == []
    assert parent.info.status == "FINISHED"
    assert parent.data.params["objective.metric"] == "loss"
    assert parent.data.params["space.x"].startswith("{'name': 'x'")
    assert parent.data.tags["sweeper.best_trial"] == "2"
    best = client.get_metric_history(parent.info.run_id, "best loss")
    assert [(m.step, m.value) for m in best] == [(0, 0.5), (2, 0.25)]  # as it improved
    assert [r.info.status for r in trials] == ["FINISHED", "FAILED", "FINISHED", "FINISHED"]
    for number, run in enumerate(trials):
        assert run.info.run_name == f"trial-{number}"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.params["epochs"] == "3"
        assert "x" in run.data.params
        assert run.data.tags["sweeper.job"] == f"quad-{number}-1"
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.25), (2, 0.125)]
    assert trials[1].data.tags["sweeper.failure"] == "AlgorithmError: exit 3"
    assert "sweeper.model_uri" not in trials[1].data.tags
    assert trials[0].data.tags["sweeper.model_uri"] == "s3://b/quad-0-1/model.tar.gz"


async def test_a_rerun_completes_what_a_crash_left_open_without_a_second_run(
    tmp_path: Path,
) -> None:
    cfg = _config(tmp_path)
    study = SweepStudy.open(cfg, storage=f"sqlite:///{tmp_path / 'study.db'}")
    first = _tracker(cfg, study, [])
    await first.start()
    record = await study.ask(lambda number, attempt: f"quad-{number}-{attempt}")
    assert record is not None
    await first.prepare(record)
    first.close()
    await first.drain()  # its run began; the crash comes before its result is recorded
    attrs = {JOB_NAME: record.job_name, "job_status": "Completed"}
    await study.tell_complete(record.number, (0.5,), attrs)

    again = _tracker(cfg, study, [])
    assert await again.start() == 1  # the trial whose run is still RUNNING
    again.close()
    await again.drain()
    await again.finish(interrupted=True)

    _, (parent, *trials) = _runs(cfg)  # one parent, reused
    assert parent.info.status == "KILLED"  # interrupted: a rerun reopens it
    assert parent.data.tags["sweeper.best_trial"] == "0"  # learnt on catching up
    assert [(r.info.status, r.data.tags["sweeper.trial"]) for r in trials] == [("FINISHED", "0")]


async def test_with_a_sagemaker_mlflow_arn_jobs_name_their_run(tmp_path: Path) -> None:
    cfg = _config(tmp_path, tracking_uri=ARN, experiment="team-sweeps")
    study = SweepStudy.open(cfg, storage=f"sqlite:///{tmp_path / 'study.db'}")
    tracker = _tracker(cfg, study, [])
    await tracker.start()
    record = await study.ask(lambda number, attempt: f"quad-{number}-{attempt}")
    assert record is not None
    assert tracker.fields(record.number) == {}  # no run yet, no MlflowConfig
    async with asyncio.TaskGroup() as tg:
        tg.create_task(tracker.drain())
        await tracker.prepare(record)  # with an ARN, waits for the run
        assert tracker.fields(record.number) == {
            "MlflowConfig": {
                "MlflowResourceArn": ARN,
                "MlflowExperimentName": "team-sweeps",
                "MlflowRunName": "trial-0",
            }
        }
        tracker.close()


async def test_errors_are_said_once_and_the_next_run_catches_up(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    study = SweepStudy.open(cfg, storage=f"sqlite:///{tmp_path / 'study.db'}")
    notes: list[str] = []
    broken = _tracker(cfg, study, notes, BrokenStore)
    await broken.start()
    await _finish(study, broken, [0.5, 0.25, 0.75])
    broken.close()
    await broken.drain()  # three trials, three failures: one note
    assert notes == [
        "MLflow: ConnectionError: Connection refused; what is not recorded is on the next run"
    ]
    assert "3 step(s) failed (done on the next run)" in broken.summary()

    again = _tracker(cfg, study, notes)
    assert await again.start() == 3
    again.close()
    await again.drain()
    _, (_, *trials) = _runs(cfg)
    assert [r.info.status for r in trials] == ["FINISHED"] * 3
    assert len(notes) == 1


async def test_mlflow_that_does_not_answer_is_said_once_and_costs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the worker inherits them
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    cfg = _config(tmp_path, tracking_uri=f"http://127.0.0.1:{free_port()}")
    study = SweepStudy.open(cfg, storage=f"sqlite:///{tmp_path / 'study.db'}")
    said: list[str] = []
    worker = start_mlflow(cfg)  # a process of its own, as a sweep starts it
    assert worker is not None
    tracker = _tracker_on(worker, cfg, study, said)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(tracker.drain())
            await _finish(study, tracker, [0.5, 0.25])  # the trials go on meanwhile
            tracker.close()
        await tracker.finish(interrupted=False)
    finally:
        worker.close()
    assert len(said) == 1, said
    assert "did not answer" in said[0] and "its next run records the runs" in said[0]
    assert "nothing recorded" in tracker.summary()
    assert [t.state.name for t in await study.trials()] == ["COMPLETE", "COMPLETE"]


async def test_with_several_objectives_the_parent_tags_the_pareto_front(tmp_path: Path) -> None:
    doc = space_doc(budget={"max_trials": 20})
    del doc["objective"]
    doc["objectives"] = [
        {"metric": "loss", "direction": "minimize"},
        {"metric": "size", "direction": "minimize"},
    ]
    doc["constraints"] = [{"metric": "size", "max": 6}]
    doc["estimator"]["metric_definitions"].append({"name": "size", "regex": "size=([0-9.]+)"})
    doc["tracking"] = {"experiments": False, "mlflow": {}}
    cfg = config.load(write_sweep(tmp_path, doc))
    study = SweepStudy.open(cfg, storage=f"sqlite:///{tmp_path / 'study.db'}")
    notes: list[str] = []
    tracker = _tracker(cfg, study, notes)
    await tracker.start()
    told = [(0.5, 3.0), (0.25, 5.0), (0.75, 1.0), (0.6, 4.0), (0.1, 9.0)]  # 3: dominated
    for values in told:
        record = await study.ask(lambda number, attempt: f"quad-{number}-{attempt}")
        assert record is not None
        await tracker.prepare(record)
        attrs = {"job_status": "Completed", "job_ended": 5.0}
        violations = {"size<=6": values[1] - 6}  # the last one breaks it
        await study.tell_complete(record.number, values, attrs, violations)
        await tracker.recorded(Outcome(record, values, "", attrs, violations=violations))
    tracker.close()
    await tracker.drain()
    await tracker.finish(interrupted=False)
    _, (parent, *_) = _runs(cfg)
    assert notes == []
    assert parent.data.tags["sweeper.pareto_front"] == "0,1,2"
    assert "sweeper.best_trial" not in parent.data.tags
    assert parent.data.params["objectives.1.metric"] == "size"
    assert parent.data.params["constraints.size.max"] == "6"
    study.close()
