"""Warm pools managed by the sweep: reuse, release at the end (or kept), the quota of 0."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import yaml

from tests.helpers import (
    ROOT,
    boto3_client,
    run_sweep,
    space_doc,
    standalone_emulator,
    write_sweep,
)


def _pools(url: str, jobs: list[str]) -> dict[str, dict[str, object]]:
    sm = boto3_client(url)
    return {n: sm.describe_training_job(TrainingJobName=n)["WarmPoolStatus"] for n in jobs}


def test_trials_reuse_the_pool_and_the_last_one_is_released(tmp_path: Path) -> None:
    with standalone_emulator(tmp_path / "state", "--cold-start-seconds", "0.5") as url:
        doc = space_doc(
            budget={"max_trials": 3, "max_parallel": 1},
            backend={"kind": "emulator", "endpoint_url": url},
        )
        doc["estimator"] |= {"keep_alive_period_in_seconds": 60, "instance_price_per_hour": 3.6}
        space = write_sweep(tmp_path, doc)
        result = run_sweep(str(space))
        assert result.returncode == 0, result.stdout + result.stderr
        pools = _pools(url, ["quad-0-1", "quad-1-1", "quad-2-1"])
    # Each replacement waited for its predecessor's pool to be Available, then took it.
    assert pools["quad-0-1"] == pools["quad-0-1"] | {"Status": "Reused", "ReusedByJob": "quad-1-1"}
    assert pools["quad-1-1"] == pools["quad-1-1"] | {"Status": "Reused", "ReusedByJob": "quad-2-1"}
    assert pools["quad-2-1"]["Status"] == "Terminated"  # released when the sweep ended
    assert "Warm pools:" in result.stdout and "1 released" in result.stdout
    report = json.loads(run_sweep("report", str(space), "--json").stdout)
    totals = report["totals"]
    assert totals["warm_pool_reuses"] == 2  # quad-0-1 and quad-1-1
    retained = sum(int(p["ResourceRetainedBillableTimeInSeconds"]) for p in pools.values())
    assert totals["warm_pool_seconds"] == retained
    assert totals["warm_pool_cost"] == round(retained * 3.6 / 3600, 4)
    text = run_sweep("report", str(space)).stdout
    assert "warm-pool reuses 2" in text and f"warm pools retained {retained} s" in text


def test_pools_kept_after_the_sweep_are_said_and_shown_by_status(tmp_path: Path) -> None:
    with standalone_emulator(tmp_path / "state") as url:
        doc = space_doc(
            budget={"max_trials": 2, "max_parallel": 1},
            backend={"kind": "emulator", "endpoint_url": url},
        )
        doc["estimator"] |= {"keep_alive_period_in_seconds": 600, "keep_pools_after_sweep": True}
        space = write_sweep(tmp_path, doc)
        result = run_sweep(str(space))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 left Available (estimator.keep_pools_after_sweep)" in result.stdout
        deadline = time.monotonic() + 30  # the pool turns Available a moment after its job
        while _pools(url, ["quad-1-1"])["quad-1-1"]["Status"] != "Available":
            assert time.monotonic() < deadline, "the kept pool never became Available"
            time.sleep(0.1)
        status = run_sweep("status", str(space))
        assert "warm pools held: 1" in status.stdout, status.stdout
        assert "quad-1-1  Available since" in status.stdout


def test_with_a_warm_pool_quota_of_0_the_quickstart_completes_without_pools(
    tmp_path: Path,
) -> None:
    shutil.copytree(ROOT / "src", tmp_path / "src")
    (tmp_path / "search_spaces").mkdir()
    doc = yaml.safe_load((ROOT / "search_spaces" / "quickstart.yaml").read_text())
    doc["estimator"]["keep_alive_period_in_seconds"] = 300
    doc["emulator"] = {"warm_pool_quota": 0}
    space = tmp_path / "search_spaces" / "quickstart.yaml"
    space.write_text(yaml.safe_dump(doc))
    result = run_sweep(str(space), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 trials (12 complete, 0 failed, 0 running)" in result.stdout
    said = [line for line in result.stdout.splitlines() if "warm pool usage" in line]
    assert len(said) == 1, said  # once, naming the quota to raise
    assert "quota 'ml.m5.large for training warm pool usage' (now 0) is spent" in said[0]
    assert "the sweep goes on without warm pools" in said[0]
