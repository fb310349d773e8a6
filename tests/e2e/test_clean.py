"""``sweep.py clean`` on a standalone emulator: a 120-trial sweep spread over 3
experiments (50, 50, 20 runs), and another sweep beside it that must be left as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    GATED,
    ROOT,
    boto3_client,
    emulator_info,
    read_until,
    run_sweep,
    s3_client,
    space_doc,
    standalone_emulator,
    start_sweep,
    write_sweep,
)

pytestmark = pytest.mark.timeout(600)
TRIALS, PER_EXPERIMENT = 120, 50  # 3 experiments, as SageMaker's 50-runs limit splits them


def _sweep(root: Path, name: str, url: str, trials: int, per_experiment: int) -> Path:
    doc = space_doc(
        name=name,
        budget={"max_trials": trials, "max_parallel": 8, "max_failures": 1},
        backend={"kind": "emulator", "endpoint_url": url},
        experiment={"runs_per_experiment": per_experiment},
    )
    space = write_sweep(root, doc)
    done = run_sweep(str(space), timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    return space


def _left(url: str) -> dict[str, Any]:
    """Every experiment, trial, component and S3 key the emulator holds."""
    sm, s3 = boto3_client(url), s3_client(emulator_info(url)["s3_endpoint_url"])

    def every(op: str, key: str, **query: Any) -> list[Any]:
        return [x for page in sm.get_paginator(op).paginate(**query) for x in page[key]]

    experiments = {e["ExperimentName"] for e in every("list_experiments", "ExperimentSummaries")}
    trials = {
        t["TrialName"]
        for e in experiments
        for t in every("list_trials", "TrialSummaries", ExperimentName=e)
    }
    components = {
        c["TrialComponentName"]
        for t in trials
        for c in every("list_trial_components", "TrialComponentSummaries", TrialName=t)
    }
    keys = {
        f"{b['Name']}/{o['Key']}"
        for b in s3.list_buckets()["Buckets"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b["Name"])
        for o in page.get("Contents", [])
    }
    return {"experiments": experiments, "trials": trials, "components": components, "keys": keys}


def _shard(n: int) -> str:
    shard = n // PER_EXPERIMENT
    return f"{shard + 1}-" if shard else ""


def test_clean_removes_this_sweeps_things_and_nothing_else(tmp_path: Path) -> None:
    with standalone_emulator(tmp_path / "state") as url:
        other = _sweep(tmp_path / "other", "kept", url, 6, PER_EXPERIMENT)
        before_other = _left(url)
        space = _sweep(tmp_path / "mine", "gone", url, TRIALS, PER_EXPERIMENT)
        both = _left(url)
        assert {"gone", "gone-2", "gone-3"} <= both["experiments"]
        listed = run_sweep("clean", str(space))
        assert listed.returncode == 0, listed.stderr
        assert "nothing removed" in listed.stdout and _left(url) == both  # a dry run
        assert "experiment gone-3:" in listed.stdout
        done = run_sweep("clean", str(space), "--experiments", "--s3", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert _left(url) == before_other  # the other sweep's all there; ours all gone
        sm = boto3_client(url)
        for n in range(TRIALS):  # not left behind outside a trial either
            for name in (f"gone-{n}-1-aws-training-job", f"gone-{_shard(n)}trial-{n}"):
                with pytest.raises(sm.exceptions.ResourceNotFound):
                    sm.describe_trial_component(TrialComponentName=name)
        again = run_sweep("clean", str(space), "--experiments", "--s3", "--yes")
        assert again.returncode == 0, again.stderr
        assert "removed what sweep gone created (0 item(s))" in again.stdout
        assert run_sweep("report", str(other)).returncode == 0
        assert run_sweep("clean", str(space), "--study", "--yes").returncode == 0
        gone = run_sweep("status", str(space))
        assert gone.returncode == 2 and "no sweep named 'gone'" in gone.stderr


def test_a_clean_killed_halfway_is_finished_by_the_next(tmp_path: Path) -> None:
    with standalone_emulator(tmp_path / "state") as url:
        space = _sweep(tmp_path, "halfway", url, 12, 4)  # 3 experiments
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "sweep.py"), "clean", str(space), "--experiments", "--yes"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            read_until(proc, "deleted experiment halfway")  # the first of three
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        assert "halfway-3" in _left(url)["experiments"]
        done = run_sweep("clean", str(space), "--experiments", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert not {e for e in _left(url)["experiments"] if e.startswith("halfway")}


def test_clean_yes_refuses_a_running_sweep(tmp_path: Path) -> None:
    gate = tmp_path / "go"
    with standalone_emulator(tmp_path / "state") as url:
        doc = space_doc(backend={"kind": "emulator", "endpoint_url": url})
        doc["estimator"]["hyperparameters"] = {"gate": str(gate)}
        space = write_sweep(tmp_path, doc, script=GATED)
        proc = start_sweep(str(space))
        try:
            read_until(proc, "started")
            refused = run_sweep("clean", str(space), "--yes")
            assert refused.returncode == 2, refused.stdout + refused.stderr
            assert "is running" in refused.stderr and "Traceback" not in refused.stderr
            gate.write_text("go")
            proc.communicate(timeout=300)
        finally:
            proc.kill()
        assert proc.returncode == 0
