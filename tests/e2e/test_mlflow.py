"""Every trial an MLflow run: a sweep against a real ``mlflow server`` (SQLite store, on
127.0.0.1, started here and stopped after), SIGKILLed at random moments and rerun, read
back through MLflow's own client."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.helpers import (
    kill_and_resume,
    objective,
    run_sweep,
    space_doc,
    sweep_trials,
    write_sweep,
)

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is part of `test`")

TRIALS = 6


def test_sweep_records_one_parent_and_a_nested_run_per_trial_through_kills(
    tmp_path: Path, mlflow_server: str
) -> None:
    doc = space_doc(budget={"max_trials": TRIALS, "max_parallel": 2, "max_failures": 1})
    doc["tracking"] = {"mlflow": {"tracking_uri": mlflow_server, "experiment": "quad-runs"}}
    doc["estimator"]["hyperparameters"] = {"sleep": 0.3}
    space = write_sweep(tmp_path, doc)
    kills = kill_and_resume(space, kills=3, seed=14)
    assert kills >= 2  # a run that finished by itself ends the kills early
    final = run_sweep(str(space), timeout=240)
    assert final.returncode == 0, final.stdout + final.stderr
    assert "MLflow: " in final.stdout

    client = mlflow.tracking.MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("quad-runs")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("sweeper.role") == "sweep"]
    nested = [r for r in runs if r.data.tags.get("sweeper.role") == "trial"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["objective.metric"] == "loss"
    assert parent.data.params["budget.max_trials"] == str(TRIALS)

    trials = {t.number: t for t in sweep_trials(space) if t.state == TrialState.COMPLETE}
    assert len(trials) == TRIALS
    assert sorted(int(r.data.tags["sweeper.trial"]) for r in nested) == sorted(trials)
    for run in nested:
        trial = trials[int(run.data.tags["sweeper.trial"])]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED"
        assert run.info.run_name == f"trial-{trial.number}"
        assert float(run.data.params["x"]) == pytest.approx(trial.params["x"])
        assert run.data.params["sleep"] == "0.3"
        assert run.data.tags["sweeper.job"] == trial.user_attrs["job_name"]
        assert run.data.tags["sweeper.model_uri"].endswith(
            f"/{trial.user_attrs['job_name']}/output/model.tar.gz"
        )
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [m.value for m in history] == [pytest.approx(objective(trial.params["x"]))]

    best = min(trials.values(), key=lambda t: t.value)
    assert parent.data.tags["sweeper.best_trial"] == str(best.number)
    assert parent.data.metrics["best loss"] == pytest.approx(best.value)


def test_a_note_is_the_trial_runs_description(tmp_path: Path) -> None:
    doc = space_doc(budget={"max_trials": 2, "max_parallel": 2, "max_failures": 1})
    doc["tracking"] = {"experiments": False, "mlflow": {}}  # SQLite under .sweeps/
    space = write_sweep(tmp_path, doc)
    assert run_sweep(str(space)).returncode == 0

    noted = run_sweep("note", str(space), "1", "baseline: the default learning rate")
    assert noted.returncode == 0, noted.stderr
    assert "noted on its MLflow run " in noted.stdout
    assert "was not updated" not in noted.stderr  # no Experiments run to update

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / '.sweeps' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("quad")
    runs = client.search_runs([experiment.experiment_id], "tags.`sweeper.trial` = '1'")
    assert [r.data.tags["mlflow.note.content"] for r in runs] == [
        "baseline: the default learning rate"
    ]


def test_clean_deletes_the_sweeps_mlflow_runs_only(tmp_path: Path) -> None:
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / '.sweeps' / 'mlflow.db'}")
    for name in ("kept", "quad"):
        doc = space_doc(name=name, budget={"max_trials": 2, "max_parallel": 2, "max_failures": 1})
        doc["tracking"] = {"experiments": False, "mlflow": {"experiment": "shared"}}
        assert run_sweep(str(write_sweep(tmp_path, doc))).returncode == 0
    space = tmp_path / "space.yaml"  # the second, "quad"
    experiment = client.get_experiment_by_name("shared").experiment_id

    def runs(sweep: str) -> int:
        return len(client.search_runs([experiment], f"tags.`sweeper.sweep` = '{sweep}'"))

    assert (runs("kept"), runs("quad")) == (3, 3)  # a parent and a run per trial each
    listed = run_sweep("clean", str(space), "--mlflow")
    assert listed.returncode == 0 and "MLflow: 3 run(s)" in listed.stdout, listed.stderr
    assert runs("quad") == 3  # a dry run
    done = run_sweep("clean", str(space), "--mlflow", "--yes")
    assert done.returncode == 0, done.stderr
    assert (runs("kept"), runs("quad")) == (3, 0)
