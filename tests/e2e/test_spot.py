"""Spot and retries resume from the trial's checkpoints; spot falls back on demand; cost.

The example training script (``src/train.py``) checkpoints after each epoch and prints
``resumed from checkpoint at epoch N`` when it finds one. Faults come from the
emulator's log triggers, so what happens does not depend on timing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.helpers import (
    ROOT,
    boto3_client,
    run_sweep,
    space_doc,
    standalone_emulator,
    write_sweep,
)

GROUP = "/aws/sagemaker/TrainingJobs"


def _digits_sweep(tmp_path: Path, url: str, trials: int, **estimator: Any) -> Path:
    shutil.copytree(ROOT / "src", tmp_path / "src")
    doc = {
        "name": "ckpt",
        "objective": {"metric": "validation:accuracy", "direction": "maximize"},
        "budget": {"max_trials": trials, "max_parallel": 3, "max_failures": 2},
        "sampler": {"kind": "random", "seed": 3},
        "space": {"learning_rate": {"type": "float", "low": 0.05, "high": 0.3}},
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "max_run": 300,
            "hyperparameters": {"max_iter": 24, "epochs": 4},
            "environment": {"OMP_NUM_THREADS": "1"},
            "metric_definitions": [
                {"name": "validation:accuracy", "regex": "val_accuracy=([0-9.]+)"}
            ],
            **estimator,
        },
        "backend": {"kind": "emulator", "endpoint_url": url},
    }
    return write_sweep(tmp_path, doc, script=(ROOT / "src" / "train.py").read_text())


def _streams(url: str, job: str) -> list[str]:
    """The text of each of the job's log streams, in order."""
    logs = boto3_client(url, "logs")
    names = [
        s["logStreamName"]
        for s in logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{job}/")[
            "logStreams"
        ]
    ]
    return [
        "\n".join(
            e["message"]
            for e in logs.get_log_events(
                logGroupName=GROUP, logStreamName=name, startFromHead=True
            )["events"]
        )
        for name in sorted(names)
    ]


def _jobs(url: str) -> dict[str, dict[str, Any]]:
    sm = boto3_client(url)
    names = [
        s["TrainingJobName"] for s in sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    ]
    return {n: sm.describe_training_job(TrainingJobName=n) for n in names}


def test_interrupted_spot_jobs_resume_from_their_checkpoints(tmp_path: Path) -> None:
    flags = ["--spot-interruption-rate", "0.3", "--seed", "1"]
    flags += ["--spot-interrupt-on-log", "checkpoint saved epoch=2"]
    with standalone_emulator(tmp_path / "state", *flags) as url:
        space = _digits_sweep(tmp_path, url, 6, use_spot_instances=True, max_wait=600)
        result = run_sweep(str(space))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "6 trials (6 complete, 0 failed, 0 running)" in result.stdout
        jobs = _jobs(url)
        interrupted = [
            n
            for n, j in jobs.items()
            if "Interrupted" in [t["Status"] for t in j["SecondaryStatusTransitions"]]
        ]
        assert interrupted  # seed 1 interrupts some of the six
        for name in interrupted:
            first, second = _streams(url, name)
            assert "checkpoint saved epoch=2" in first
            assert "resumed from checkpoint at epoch 2" in second, second
            assert "epoch=1 " not in second  # it did not start over
        assert len(jobs) == 6  # an interruption is not a new job


def test_an_attempt_after_an_internal_error_resumes_from_the_last_checkpoint(
    tmp_path: Path,
) -> None:
    flags = ["--internal-error-on-log", "checkpoint saved epoch=2"]
    with standalone_emulator(tmp_path / "state", *flags) as url:
        space = _digits_sweep(tmp_path, url, 2, checkpoint_s3_uri="s3://ckpt-bucket/runs")
        result = run_sweep(str(space))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 trials (2 complete, 0 failed, 0 running)" in result.stdout
        jobs = _jobs(url)
        for trial in (0, 1):
            first, second = jobs[f"ckpt-{trial}-1"], jobs[f"ckpt-{trial}-2"]
            assert first["FailureReason"].startswith("InternalServerError")
            assert second["TrainingJobStatus"] == "Completed"
            uri = f"s3://ckpt-bucket/runs/ckpt-{trial}"  # one prefix for every attempt
            assert first["CheckpointConfig"]["S3Uri"] == second["CheckpointConfig"]["S3Uri"] == uri
            (log,) = _streams(url, f"ckpt-{trial}-2")
            assert "resumed from checkpoint at epoch 2" in log, log
            assert "epoch=1 " not in log
        assert "retrying as attempt 2" in result.stdout


def test_spot_that_cannot_meet_max_wait_falls_back_on_demand_from_the_checkpoint(
    tmp_path: Path,
) -> None:
    # Interrupted after epoch 2, and spot capacity never comes back within MaxWait.
    flags = ["--spot-interruption-rate", "1", "--spot-interrupt-on-log", "checkpoint saved epoch=2"]
    flags += ["--spot-restart-delay-seconds", "100000"]
    with standalone_emulator(tmp_path / "state", *flags) as url:
        space = _digits_sweep(
            tmp_path,
            url,
            1,
            use_spot_instances=True,
            max_run=20,
            max_wait=20,
            spot_fallback="on_demand",
        )
        result = run_sweep(str(space))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 trials (1 complete, 0 failed, 0 running)" in result.stdout
        jobs = _jobs(url)
        spot, fallback = jobs["ckpt-0-1"], jobs["ckpt-0-2"]
        assert (spot["TrainingJobStatus"], spot["SecondaryStatus"]) == (
            "Stopped",
            "MaxWaitTimeExceeded",
        )
        assert fallback["TrainingJobStatus"] == "Completed"
        assert not fallback.get("EnableManagedSpotTraining")
        assert fallback["CheckpointConfig"] == spot["CheckpointConfig"]
        (log,) = _streams(url, "ckpt-0-2")
        assert "resumed from checkpoint at epoch 2" in log, log
        assert "retrying as attempt 2 on demand" in result.stdout


def test_max_cost_stops_dispatching(tmp_path: Path) -> None:
    with standalone_emulator(tmp_path / "state") as url:
        doc = space_doc(
            budget={"max_trials": 10, "max_parallel": 1, "max_cost": 3.5},
            backend={"kind": "emulator", "endpoint_url": url},
        )
        doc["estimator"] |= {
            "instance_price_per_hour": 3600.0,  # $1 per billable second
            "hyperparameters": {"sleep": 0.3},
        }
        space = write_sweep(tmp_path, doc)
        result = run_sweep(str(space))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "stopped: max_cost reached" in result.stdout
        report = json.loads(run_sweep("report", str(space), "--json").stdout)
        costs = [t["cost"] for t in report["trials"] if t["cost"] is not None]
        assert 1 <= len(costs) < 10
        # Each launch was allowed while spent + expected stayed within 3.5 (one job's
        # actual cost may exceed its estimate).
        assert report["totals"]["cost"] <= 3.5 + max(costs)
