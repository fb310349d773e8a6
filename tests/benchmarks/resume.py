"""Crash-safety: SIGKILL the orchestrator at random moments, rerun it each time.

    python tests/benchmarks/resume.py [--kills 20] [--trials 30] [--parallel 4] [--seconds 0.5]

A 30-trial, P=4 sweep runs against a standalone emulator (a separate process, so jobs
outlive the orchestrator as on SageMaker). ``sweep.py`` is killed with SIGKILL after a
random number of its output lines, 20 times, then run once more to the end. Prints:

* kills: SIGKILLs delivered (a run that finished first is not counted);
* trials: COMPLETE trials at the end (target: all of them);
* jobs: training jobs the emulator holds;
* duplicates: jobs beyond one per trial (target 0);
* lost: trials without a result at the end (target 0);
* runs: trials with an Experiments run, how many Completed, duplicate runs (target 0).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT))

from optuna.trial import TrialState  # noqa: E402

from tests.helpers import (  # noqa: E402
    boto3_client,
    kill_and_resume,
    list_jobs,
    space_doc,
    standalone_emulator,
    sweep_trials,
    write_sweep,
)


def _runs(url: str) -> list[dict[str, Any]]:
    """Every Experiments run (tagged trial component) the emulator holds."""
    pages = (
        boto3_client(url)
        .get_paginator("search")
        .paginate(
            Resource="ExperimentTrialComponent",
            SearchExpression={
                "Filters": [
                    {
                        "Name": "Tags.sagemaker:trial-component-source",
                        "Operator": "Equals",
                        "Value": "run",
                    }
                ]
            },
        )
    )
    return [r["TrialComponent"] for page in pages for r in page["Results"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=0.5, help="each job's duration")
    parser.add_argument("--seed", type=int, default=7)
    a = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, standalone_emulator(Path(tmp) / "state") as url:
        doc = space_doc(
            budget={"max_trials": a.trials, "max_parallel": a.parallel, "max_failures": 1},
            backend={"kind": "emulator", "endpoint_url": url},
        )
        doc["estimator"]["hyperparameters"] = {"sleep": a.seconds}
        space = write_sweep(Path(tmp), doc)
        kills = kill_and_resume(space, a.kills, a.seed, most_lines=5)
        final = subprocess.run(
            [sys.executable, str(ROOT / "sweep.py"), str(space)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if final.returncode != 0:
            raise SystemExit(f"the final run failed:\n{final.stdout}\n{final.stderr}")
        jobs = list_jobs(url)
        runs = _runs(url)
        trials = [t for t in sweep_trials(space) if t.state != TrialState.PRUNED]
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    with_jobs = {t.user_attrs.get("job_name") for t in trials}
    print(f"kills       {kills}")
    print(f"trials      {complete} complete of {a.trials}")
    print(f"jobs        {len(jobs)}")
    print(f"duplicates  {len(jobs) - len(set(jobs) & with_jobs)}")
    print(f"lost        {a.trials - complete}")
    names = [r["DisplayName"] for r in runs]
    done = sum(r["Status"]["PrimaryStatus"] == "Completed" for r in runs)
    print(
        f"runs        {len(set(names))} trials with a run, {done} Completed,"
        f" {len(names) - len(set(names))} duplicates (Experiments)"
    )
    print(f"wall        {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
