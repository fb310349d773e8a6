"""Early stopping end to end: the learning-curve example's space file, on a standalone
emulator, with a training script whose hopeless trials can only end by being stopped.

Three of six grid points barely learn (a learning rate of ~1e-7). Their jobs print three
epochs, then wait: for a stop, or for a gate the test opens only for a trial that started
before two trials had finished (the median rule's startup trials: nothing can prune it).
So every other hopeless trial ends only if the pruner stops it, whatever the machine's
speed: no race between a job's end and the pruner's poll.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import yaml

from tests.helpers import (
    ROOT,
    boto3_client,
    read_line,
    run_sweep,
    standalone_emulator,
    start_sweep,
)

CURVES = textwrap.dedent(
    """
    import argparse, os, time
    p = argparse.ArgumentParser()
    p.add_argument("--eta0", type=float, required=True)
    p.add_argument("--gates", required=True)
    a = p.parse_args()
    hopeless = a.eta0 < 1e-6
    for epoch in range(1, 7):
        print(f"val_accuracy={(0.3 if hopeless else 0.9) + 0.01 * epoch:.4f} epoch={epoch}")
        if hopeless and epoch == 3:  # a stop ends it, or the test's gate lets it finish
            gate, deadline = os.path.join(a.gates, f"{a.eta0:.3g}"), time.monotonic() + 120
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.05)
    """
)
STARTED = re.compile(r"trial (\d+)\s+started\s+\S+\s+eta0=(\S+)")


def _run_opening_gates(space: Path, gates: Path) -> str:
    """Run the sweep; open the gate of each hopeless trial that starts before two trials
    have finished. Returns its output."""
    proc = start_sweep(str(space))
    out, finished = "", 0
    try:
        while line := read_line(proc, timeout=180):
            out += line
            finished += " finished " in line
            started = STARTED.search(line)
            if started and float(started[2]) < 1e-6 and finished < 2:
                (gates / f"{float(started[2]):.3g}").write_text("go")
        assert proc.wait(timeout=60) == 0, out
    finally:
        proc.kill()
    return out


def test_the_median_rule_stops_hopeless_trials_and_says_so_everywhere(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "sgd.py").write_text(CURVES)
    (tmp_path / "search_spaces").mkdir()
    gates = tmp_path / "gates"
    gates.mkdir()
    doc = yaml.safe_load((ROOT / "search_spaces" / "pruning.yaml").read_text())
    with standalone_emulator(tmp_path / "state") as url:
        doc |= {
            "budget": {"max_trials": 6, "max_parallel": 1},
            "sampler": {"kind": "grid", "seed": 1},
            "pruner": {"kind": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
            "space": {"eta0": {"type": "float", "values": [0.01, 0.05, 1e-7, 2e-7, 3e-7, 0.02]}},
            "backend": {"kind": "emulator", "endpoint_url": url},
        }
        doc["estimator"]["hyperparameters"] = {"gates": str(gates)}
        space = tmp_path / "search_spaces" / "pruning.yaml"
        space.write_text(yaml.safe_dump(doc))
        out = _run_opening_gates(space, gates)
        report = json.loads(run_sweep("report", str(space), "--json").stdout)
        pruned = [t for t in report["trials"] if t["state"] == "pruned"]
        let_through = {float(g.name) for g in gates.iterdir()}
        hopeless = [t for t in report["trials"] if t["params"]["eta0"] < 1e-6]
        assert len(let_through) < len(hopeless), out  # some could only end by a stop
        for t in hopeless:  # each one the gate did not let through was stopped
            assert (t in pruned) != (float(f"{t['params']['eta0']:.3g}") in let_through), out
        assert report["counts"]["pruned"] == len(pruned)
        assert report["counts"]["complete"] + len(pruned) == 6
        assert f"{len(pruned)} pruned" in out
        sm = boto3_client(url)
        for t in pruned:
            step = t["pruned_at_step"]
            assert f"trial {t['number']:<3} pruned    at step {step}" in out
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
