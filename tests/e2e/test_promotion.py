"""ASHA promotion end to end, on a standalone emulator: three trials pause at the first
rung, the best resumes from its checkpoint on the warm pool its predecessor left, and
trains on from the epoch after the rung; one trial, one run, one curve."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.helpers import boto3_client, run_sweep, space_doc, standalone_emulator, write_sweep

RESUMING = textwrap.dedent(
    """
    import argparse, json, os
    p = argparse.ArgumentParser()
    p.add_argument("-x", "--x", type=float, required=True)
    p.add_argument("--epochs", type=int, required=True)
    a = p.parse_args()
    state = os.path.join(os.path.dirname(os.environ["SM_MODEL_DIR"]), "checkpoints", "state.json")
    done = json.load(open(state))["epoch"] if os.path.exists(state) else 0
    if done:
        print(f"resumed from checkpoint at epoch {done}")
    for epoch in range(done + 1, a.epochs + 1):
        print(f"loss={(a.x - 0.3) ** 2 + 1 / epoch:.10f} epoch={epoch}", flush=True)
        os.makedirs(os.path.dirname(state), exist_ok=True)
        json.dump({"epoch": epoch}, open(state, "w"))
    """
)
ASHA = {
    "kind": "asha",
    "resource": "epochs",
    "min_resource": 1,
    "max_resource": 3,
    "reduction_factor": 3,
}


def _log(url: str, job: str) -> str:
    logs = boto3_client(url, "logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{job}/"
    )["logStreams"]
    return "".join(
        e["message"] + "\n"
        for s in streams
        for e in logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"]
        )["events"]
    )


def test_the_best_paused_trial_resumes_from_its_checkpoint_on_a_warm_pool(
    tmp_path: Path,
) -> None:
    with standalone_emulator(tmp_path / "state", "--cold-start-seconds", "0.5") as url:
        doc = space_doc(
            budget={"max_trials": 3, "max_parallel": 1},
            sampler={"kind": "grid", "seed": 3},
            space={"x": {"type": "float", "values": [0.9, 0.35, 0.6]}},
            pruner=ASHA,
            backend={"kind": "emulator", "endpoint_url": url},
        )
        doc["estimator"] |= {
            "keep_alive_period_in_seconds": 60,
            "metric_definitions": [
                {"name": "loss", "regex": "loss=([0-9.eE+-]+) epoch=(?P<step>[0-9]+)"}
            ],
        }
        space = write_sweep(tmp_path, doc, script=RESUMING)
        done = run_sweep(str(space), timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(run_sweep("report", str(space), "--json").stdout)
        best = next(t for t in report["trials"] if t["params"]["x"] == 0.35)
        number, sm = best["number"], boto3_client(url)
        first, second = f"quad-{number}-1", f"quad-{number}-2"
        assert best["state"] == "complete" and best["job"] == second, done.stdout
        assert "paused at epochs=1" in done.stdout
        assert f"trial {number}: promoted to epochs=3" in done.stdout
        resumed = _log(url, second)
        assert "resumed from checkpoint at epoch 1" in resumed, resumed
        assert resumed.split("loss=")[1].split()[1] == "epoch=2"  # the step after the rung
        assert sm.describe_training_job(TrainingJobName=second)["HyperParameters"]["epochs"] == "3"
        pools = [
            sm.describe_training_job(TrainingJobName=f"quad-{t['number']}-1")["WarmPoolStatus"]
            for t in report["trials"]
        ]
        assert second in {p.get("ReusedByJob") for p in pools}, pools  # on a warm pool
        others = [t for t in report["trials"] if t["number"] != number]
        assert all(t["state"] == "pruned" and t["pruned_at_step"] == 1 for t in others)
        run = sm.describe_trial_component(TrialComponentName=f"quad-trial-{number}")
        loss = next(m for m in run["Metrics"] if m["MetricName"] == "loss")
        assert loss["Count"] == 3  # one series over both jobs: epochs 1, 2 and 3
        jobs = [sm.describe_training_job(TrainingJobName=j) for j in (first, second)]
        assert best["billable_seconds"] == sum(j["BillableTimeInSeconds"] for j in jobs)
        assert report["counts"]["complete"] == 1
