"""Early stopping end to end: the learning-curve example, on a standalone emulator.

Three of six grid points barely learn (a learning rate of ~1e-7), so whatever order the
grid runs in, the median rule (2 startup trials) prunes at least one of them once two
trials have completed; the others may complete or be pruned, and both are checked.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from tests.helpers import ROOT, boto3_client, run_sweep, standalone_emulator


def test_the_median_rule_stops_hopeless_trials_and_says_so_everywhere(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "src", tmp_path / "src")
    (tmp_path / "search_spaces").mkdir()
    doc = yaml.safe_load((ROOT / "search_spaces" / "pruning.yaml").read_text())
    with standalone_emulator(tmp_path / "state") as url:
        doc |= {
            "budget": {"max_trials": 6, "max_parallel": 1},
            "sampler": {"kind": "grid", "seed": 1},
            "pruner": {"kind": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
            "space": {"eta0": {"type": "float", "values": [0.01, 0.05, 1e-7, 2e-7, 3e-7, 0.02]}},
            "backend": {"kind": "emulator", "endpoint_url": url},
        }
        doc["estimator"]["hyperparameters"] = {"epochs": 10, "epoch_seconds": 0.1}
        space = tmp_path / "search_spaces" / "pruning.yaml"
        space.write_text(yaml.safe_dump(doc))
        result = run_sweep(str(space))
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(run_sweep("report", str(space), "--json").stdout)
        pruned = [t for t in report["trials"] if t["state"] == "pruned"]
        assert any(t["params"]["eta0"] < 1e-6 for t in pruned), result.stdout
        assert report["counts"]["pruned"] == len(pruned)
        assert report["counts"]["complete"] + len(pruned) == 6
        assert f"{len(pruned)} pruned" in result.stdout
        sm = boto3_client(url)
        for t in pruned:
            step = t["pruned_at_step"]
            assert f"trial {t['number']:<3} pruned    at step {step}" in result.stdout
            assert t["failure"] == f"pruned at step {step}"
            job = sm.describe_training_job(TrainingJobName=t["job"])
            assert job["TrainingJobStatus"] == "Stopped"  # StopTrainingJob
            run = sm.describe_trial_component(
                TrialComponentName=f"{t['experiment']}-trial-{t['number']}"
            )
            assert run["Status"] == {
                "PrimaryStatus": "Stopped",
                "Message": f"pruned at step {step}",
            }
        assert report["totals"]["pruning_saved_seconds"] is not None
