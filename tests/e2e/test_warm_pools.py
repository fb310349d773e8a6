"""A sweep with keep-alive runs each trial on the warm pool its predecessor left."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import boto3_client, run_sweep, space_doc, standalone_emulator, write_sweep


def test_sequential_trials_reuse_the_warm_pool(tmp_path: Path) -> None:
    with standalone_emulator(tmp_path / "state", "--cold-start-seconds", "0.5") as url:
        doc = space_doc(
            budget={"max_trials": 3, "max_parallel": 1},
            backend={"kind": "emulator", "endpoint_url": url},
        )
        doc["estimator"]["keep_alive_period_in_seconds"] = 60
        space = write_sweep(tmp_path, doc)
        result = run_sweep(str(space))
        assert result.returncode == 0, result.stdout + result.stderr
        sm = boto3_client(url)
        pools = {
            n: sm.describe_training_job(TrainingJobName=n)["WarmPoolStatus"]
            for n in ("quad-0-1", "quad-1-1", "quad-2-1")
        }
    assert pools["quad-0-1"] == pools["quad-0-1"] | {"Status": "Reused", "ReusedByJob": "quad-1-1"}
    assert pools["quad-1-1"] == pools["quad-1-1"] | {"Status": "Reused", "ReusedByJob": "quad-2-1"}
    assert pools["quad-2-1"]["Status"] == "Available"
    report = run_sweep("report", str(space), "--json")
    assert json.loads(report.stdout)["totals"]["warm_pool_reuses"] == 2  # quad-0-1 and quad-1-1
    assert "warm-pool reuses 2" in run_sweep("report", str(space)).stdout
