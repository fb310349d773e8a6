"""Whole sweeps through the real command line, the embedded emulator and real processes."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from tests.helpers import objective, run_sweep, space_doc, write_sweep

ROOT = Path(__file__).parents[2]


def load(space: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{space.parent / '.sweeps' / f'{name}.db'}"
    trials: list[optuna.trial.FrozenTrial] = optuna.load_study(
        study_name=name, storage=storage
    ).trials
    return trials


def test_a_small_sweep_runs_real_jobs_and_reports_the_best(tmp_path: Path) -> None:
    doc = space_doc(
        budget={"max_trials": 6, "max_parallel": 2},
        space={
            "x": {"type": "float", "low": 0.0, "high": 1.0},
            "y": {"type": "int", "low": 0, "high": 2},
        },
    )
    space = write_sweep(tmp_path, doc)
    result = run_sweep(str(space))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert len(re.findall(r"trial \d+\s+started", out)) == 6
    assert len(re.findall(r"trial \d+\s+finished\s+loss=", out)) == 6
    assert "Sweep quad: 6 trials (6 complete, 0 failed, 0 running)" in out
    db = tmp_path / ".sweeps" / "quad.db"
    assert not db.with_name("quad.db-wal").exists()  # the file alone holds the study
    with sqlite3.connect(db) as conn:  # the schema stamp, deferred from start-up, was written
        assert len(conn.execute("SELECT version_num FROM alembic_version").fetchall()) == 1
    trials = load(space, "quad")
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:  # every value is what the real run computed from its parameters
        assert t.value == objective(t.params["x"], t.params["y"])
    best = min(trials, key=lambda t: t.value or 0.0)
    assert f"Best trial {best.number}: loss = " in out
    assert f"job:    quad-{best.number}-1" in out
    jobs = sorted(p.name for p in (tmp_path / ".sweeps" / "quad" / "emulator" / "jobs").iterdir())
    assert jobs == sorted(f"quad-{n}-1" for n in range(6))
    store = tmp_path / ".sweeps/quad/emulator/s3-objects"  # the emulator's S3, as it saved it
    objects = json.loads((store / "index.json").read_text())["buckets"]
    model = objects["sagemaker-us-east-1-123456789012"][
        f"quad/quad-{best.number}-1/output/model.tar.gz"
    ]
    assert (store / "bodies" / model["file"][:2] / model["file"]).is_file()

    again = run_sweep(str(space))  # a finished sweep: nothing new is launched
    assert again.returncode == 0
    assert "started" not in again.stdout
    assert len(load(space, "quad")) == 6


def test_grid_sweep_stops_when_the_grid_is_exhausted(tmp_path: Path) -> None:
    doc = space_doc(
        sampler={"kind": "grid"},
        budget={"max_trials": 50, "max_parallel": 3},
        space={
            "x": {"type": "float", "values": [0.1, 0.3, 0.9]},
            "y": {"type": "int", "values": [0, 1]},
        },
    )
    space = write_sweep(tmp_path, doc)
    result = run_sweep(str(space))
    assert result.returncode == 0, result.stderr
    trials = load(space, "quad")
    points = sorted((t.params["x"], t.params["y"]) for t in trials)
    assert points == [(0.1, 0), (0.1, 1), (0.3, 0), (0.3, 1), (0.9, 0), (0.9, 1)]
    assert {t.value for t in trials if t.params == {"x": 0.3, "y": 0}} == {0.0}


def test_failures_are_reported_with_their_reason_and_stop_the_sweep(tmp_path: Path) -> None:
    doc: dict[str, Any] = space_doc(budget={"max_trials": 20, "max_parallel": 2, "max_failures": 2})
    doc["estimator"]["hyperparameters"] = {"fail_above": -1.0}  # every trial fails
    space = write_sweep(tmp_path, doc)
    result = run_sweep(str(space))
    assert result.returncode == 1  # no trial completed
    assert "max_failures reached" in result.stdout
    assert "is too large" in result.stdout  # the stderr tail reached the user
    assert "No trial completed" in result.stdout
    trials = load(space, "quad")
    assert 2 <= len(trials) <= 3
    assert all("ExitCode 3" in t.user_attrs["failure"] for t in trials)
    for t in trials:  # each failed job's log was saved, fetched through the Logs API
        log = tmp_path / ".sweeps" / "quad" / "logs" / f"{t.user_attrs['job_name']}.log"
        assert "is too large" in log.read_text()


def test_quickstart_values_come_from_real_training(tmp_path: Path) -> None:
    """The README's sweep, shortened; a rerun of the best job's arguments gives its value."""
    doc = yaml.safe_load((ROOT / "search_spaces" / "quickstart.yaml").read_text())
    doc["budget"] |= {"max_trials": 4, "max_parallel": 2}
    doc["estimator"]["source_dir"] = str(ROOT / "src")
    space = tmp_path / "quickstart.yaml"
    space.write_text(yaml.safe_dump(doc))
    result = run_sweep(str(space))
    assert result.returncode == 0, result.stderr
    trials = load(space, doc["name"])
    values = [t.value for t in trials]
    assert len(values) == 4
    assert len(set(values)) > 1  # different parameters, different accuracies
    best = max(trials, key=lambda t: t.value or 0.0)
    args = [f"--{k}={v}" for k, v in {**best.params, **doc["estimator"]["hyperparameters"]}.items()]
    rerun = subprocess.run(
        [sys.executable, str(ROOT / "src" / "train.py"), *args, "--model-dir", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    values = re.findall(r"val_accuracy=([0-9.]+)", rerun.stdout)
    assert values, rerun.stderr
    assert float(values[-1]) == best.value  # same parameters, same value (the last, as SageMaker)
