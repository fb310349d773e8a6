"""Every trial a SageMaker Experiments Run, sharded before the 50-runs-per-group limit.

Sweeps run through ``sweep.py`` against a standalone emulator; what they leave is read
back through unmodified boto3 clients and the SageMaker SDK's own ``list_runs``.
"""

from __future__ import annotations

import json
import textwrap
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import (
    ROOT,
    boto3_client,
    experiment_runs,
    run_sweep,
    sdk_session,
    space_doc,
    standalone_emulator,
    sweep_trials,
    write_sweep,
)

FAST = textwrap.dedent(
    """
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("-x", type=float, required=True)
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--opt", required=True)
    p.add_argument("--epochs", type=int, default=3)
    a = p.parse_args()
    for epoch in range(a.epochs):
        print(f"epoch={epoch} loss={(a.x - 0.3) ** 2 + 1.0 / (epoch + 1):.6f}", flush=True)
    print(f"loss={(a.x - 0.3) ** 2:.6f}")
    """
)
RUN_TAG = {"Key": "sagemaker:trial-component-source", "Value": "run"}


def _sweep(tmp_path: Path, url: str, trials: int, parallel: int) -> Path:
    doc = space_doc(
        name="Shard-Sweep",  # the SDK lowercases experiment names; so does Sweeper
        budget={"max_trials": trials, "max_parallel": parallel, "max_failures": 3},
        sampler={"kind": "random", "seed": 3},
        space={
            "x": {"type": "float", "low": 0.0, "high": 1.0},
            "depth": {"type": "int", "low": 1, "high": 8},
            "opt": {"type": "categorical", "choices": ["adam", "sgd"]},
        },
        backend={"kind": "emulator", "endpoint_url": url},
    )
    doc["estimator"]["hyperparameters"] = {"epochs": 3}
    doc["estimator"]["metric_definitions"] = [
        {"name": "loss", "regex": r"(?:^|\s)loss=([0-9.]+)"},
    ]
    return write_sweep(tmp_path, doc, FAST)


def _calls(url: str) -> Counter[str]:
    with urllib.request.urlopen(f"{url}/_emulator/stats", timeout=10) as response:
        return Counter(json.load(response)["calls"])


def test_120_trials_fill_three_experiments_50_50_20(tmp_path: Path) -> None:
    with standalone_emulator(tmp_path / "emulator") as url:
        space = _sweep(tmp_path, url, trials=120, parallel=12)
        result = run_sweep(str(space), timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "ResourceLimitExceeded" not in result.stdout + result.stderr
        assert (
            "Runs: 120 in SageMaker Experiments shard-sweep (50), shard-sweep-2 (50), shard-sweep-3 (20)"
            in result.stdout
        )

        sm = boto3_client(url)
        names = sorted(
            e["ExperimentName"] for e in sm.list_experiments(MaxResults=100)["ExperimentSummaries"]
        )
        assert names == ["shard-sweep", "shard-sweep-2", "shard-sweep-3"]
        counts = {}
        for experiment in names:
            runs = [r for r in experiment_runs(sm, experiment) if RUN_TAG in r["Tags"]]
            counts[experiment] = len(runs)
            for run in runs:
                number = int(run["DisplayName"].removeprefix("trial-"))
                assert run["TrialComponentName"] == f"{experiment}-trial-{number}"
                assert number // 50 == names.index(experiment)  # the shard is the number's
                assert set(run["Parameters"]) == {"x", "depth", "opt", "epochs"}
                assert run["Status"]["PrimaryStatus"] == "Completed"
                (loss,) = [m for m in run["Metrics"] if m["MetricName"] == "loss"]
                assert loss["Count"] == 4  # the series from the log: 3 epochs and the final
                x = run["Parameters"]["x"]["NumberValue"]
                assert loss["Last"] == pytest.approx((x - 0.3) ** 2, abs=1e-5)
                job = run["OutputArtifacts"]["SageMaker.TrainingJob"]["Value"]
                model = run["OutputArtifacts"]["SageMaker.ModelArtifact"]["Value"]
                assert model.endswith(f"/{job}/output/model.tar.gz")
                described = sm.describe_training_job(TrainingJobName=job)
                assert described["ExperimentConfig"] == {
                    "ExperimentName": experiment,
                    "TrialName": f"Default-Run-Group-{experiment}",
                    "RunName": run["TrialComponentName"],
                }
        assert counts == {"shard-sweep": 50, "shard-sweep-2": 50, "shard-sweep-3": 20}

        before = _calls(url)
        again = run_sweep(str(space))  # a finished sweep: no new run, nothing re-recorded
        assert again.returncode == 0, again.stderr
        after = _calls(url)
        for op in ("CreateTrialComponent", "AssociateTrialComponent", "UpdateTrialComponent"):
            assert after[op] == before[op], op
        assert (
            sum(len(experiment_runs(sm, e)) for e in names) == 240
        )  # 120 runs + 120 job components


def test_a_lower_quota_moves_runs_on_and_records_all_30(tmp_path: Path) -> None:
    with standalone_emulator(tmp_path / "emulator", "--trial-component-quota", "10") as url:
        space = _sweep(tmp_path, url, trials=30, parallel=6)
        result = run_sweep(str(space), timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "Sweep shard-sweep: 30 trials (30 complete" in result.stdout.replace(
            "Shard-Sweep", "shard-sweep"
        )
        sm = boto3_client(url)
        per = {
            e: len([r for r in experiment_runs(sm, e) if RUN_TAG in r["Tags"]])
            for e in ("shard-sweep", "shard-sweep-2", "shard-sweep-3")
        }
        assert per == {"shard-sweep": 10, "shard-sweep-2": 10, "shard-sweep-3": 10}
        numbers = sorted(
            int(r["DisplayName"].removeprefix("trial-"))
            for e in per
            for r in experiment_runs(sm, e)
            if RUN_TAG in r["Tags"]
        )
        assert numbers == list(range(30))  # every trial recorded once


def test_the_sdk_lists_and_loads_theexperiment_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from sagemaker.experiments import list_runs

    with standalone_emulator(tmp_path / "emulator") as url:
        space = _sweep(tmp_path, url, trials=4, parallel=2)
        assert run_sweep(str(space)).returncode == 0
        session = sdk_session(url)
        runs = list_runs(experiment_name="shard-sweep", sagemaker_session=session)
        assert sorted(r.run_name for r in runs) == [f"trial-{n}" for n in range(4)]
        assert {r.experiment_name for r in runs} == {"shard-sweep"}


@pytest.mark.timeout(480)
def test_the_example_script_logs_to_its_own_run_from_inside_its_job(tmp_path: Path) -> None:
    """``src/train.py --log_to_run true`` opens its trial's run with the SDK's unmodified
    ``load_run()`` inside the job (the emulator gives the job credentials, region and
    endpoints) and logs what the sweep cannot read from its log."""
    doc = space_doc(
        name="inner",
        objective={"metric": "val_loss", "direction": "minimize"},
        budget={"max_trials": 2, "max_parallel": 1, "max_failures": 1},  # one job at a time
        sampler={"kind": "random", "seed": 1},
        space={"learning_rate": {"type": "float", "low": 0.05, "high": 0.3}},
    )
    doc["estimator"]["hyperparameters"] = {"log_to_run": "true", "epochs": 2, "max_iter": 4}
    doc["estimator"]["metric_definitions"] = [{"name": "val_loss", "regex": r"val_loss=([0-9.]+)"}]
    # One OpenMP thread: on a busy machine sklearn's threads spin against the load.
    doc["estimator"]["environment"] = {"OMP_NUM_THREADS": "1"}
    with standalone_emulator(tmp_path / "emulator") as url:
        doc["backend"] = {"kind": "emulator", "endpoint_url": url}
        space = write_sweep(tmp_path, doc, (ROOT / "src" / "train.py").read_text())
        # Each job imports sklearn and the SageMaker SDK: seconds each, minutes when loaded.
        result = run_sweep(str(space), timeout=420, env={"SAGEMAKER_SUPPRESS_V2_WARNING": "1"})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        found = experiment_runs(boto3_client(url), "inner")
    runs = [r for r in found if r["TrialComponentName"].startswith("inner-trial-")]
    assert len(runs) == 2  # beside them, each job's own <job>-aws-training-job component
    for run in runs:
        metrics = {m["MetricName"]: m for m in run.get("Metrics", [])}
        assert metrics["epoch_accuracy"]["Count"] == 2  # logged by the job itself
        assert "val_loss" in metrics  # read from its log by the sweep
        assert run["Parameters"]["samples"] == {"NumberValue": 1797.0}


def test_experiment_analytics_reads_a_sweep_one_row_per_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SDK v2's ``ExperimentAnalytics(...).dataframe()``, unmodified, on a sweep: every
    component reads (artifact maps present), and the runs give one row per trial with
    its parameters and final metric."""
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from sagemaker.analytics import ExperimentAnalytics

    with standalone_emulator(tmp_path / "emulator") as url:
        space = _sweep(tmp_path, url, trials=4, parallel=2)
        assert run_sweep(str(space)).returncode == 0
        session = sdk_session(url)
        everything = ExperimentAnalytics(
            experiment_name="shard-sweep", sagemaker_session=session
        ).dataframe()
        runs_only = {"Filters": [{"Name": "Source.SourceArn", "Operator": "NotExists"}]}
        runs = ExperimentAnalytics(
            experiment_name="shard-sweep", search_expression=runs_only, sagemaker_session=session
        ).dataframe()
    assert len(everything) == 8  # each trial's run, and its job's own component
    assert sorted(runs["DisplayName"]) == [f"trial-{n}" for n in range(4)]
    trials = {t.number: t for t in sweep_trials(space, "Shard-Sweep")}
    for _, row in runs.iterrows():
        trial = trials[int(row["DisplayName"].removeprefix("trial-"))]
        assert row["x"] == pytest.approx(trial.params["x"])
        assert row["opt"] == trial.params["opt"]
        assert row["loss - Last"] == pytest.approx(trial.value)
