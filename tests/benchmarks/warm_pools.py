"""Warm pools: the same sweep with keep-alive off and on, on an emulator with slow cold starts.

    python tests/benchmarks/warm_pools.py [--trials 24] [--parallel 4] [--scale 1.0]

Each sweep (a script that sleeps 1 s, K trials, P at a time) runs through ``sweep.py``
against its own standalone emulator with a cold start of 10 s, a warm start of 1 s and
a pool that turns Available 1 s after its job ends, all times ``--scale`` (the issue
allows scaling them down together). Prints, for each sweep:

* wall: seconds from start to exit of ``sweep.py``;
* reuse ratio: jobs that started on a warm pool / (K - P), the most that can;
* pools left Available after the sweep (what would still be billed).

Targets (issue 11): reuse >= 0.95, wall >= 40 % lower with pools, 0 pools left.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers import boto3_client, standalone_emulator  # noqa: E402

SCRIPT = """\
import sys, time
time.sleep(float(sys.argv[sys.argv.index("--sleep") + 1]))
print("loss=" + sys.argv[sys.argv.index("-x") + 1])
"""


def _space(root: Path, url: str, trials: int, parallel: int, keep_alive: int) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "train.py").write_text(SCRIPT)
    doc: dict[str, Any] = {
        "name": "pools",
        "objective": {"metric": "loss", "direction": "minimize"},
        "budget": {"max_trials": trials, "max_parallel": parallel, "max_failures": 1},
        "sampler": {"kind": "random", "seed": 0},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "hyperparameters": {"sleep": 1.0},
            "keep_alive_period_in_seconds": keep_alive,
            "metric_definitions": [{"name": "loss", "regex": "loss=([0-9.]+)"}],
        },
        "backend": {"kind": "emulator", "endpoint_url": url},
    }
    path = root / "space.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run(trials: int, parallel: int, scale: float, keep_alive: int) -> dict[str, float]:
    flags = [
        *("--cold-start-seconds", str(10 * scale)),
        *("--warm-start-seconds", str(1 * scale)),
        *("--pool-available-delay-seconds", str(1 * scale)),
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        standalone_emulator(Path(tmp) / "state", *flags) as url,
    ):
        space = _space(Path(tmp) / "sweep", url, trials, parallel, keep_alive)
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(ROOT / "sweep.py"), str(space)], capture_output=True, text=True
        )
        wall = time.monotonic() - start
        if done.returncode != 0:
            raise SystemExit(f"sweep failed:\n{done.stdout}\n{done.stderr}")
        sm = boto3_client(url)
        jobs = [
            sm.describe_training_job(TrainingJobName=s["TrainingJobName"])
            for s in sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
        ]
    warm = sum(
        j["SecondaryStatusTransitions"][0]["StatusMessage"]
        == "Reusing the instances of a warm pool"
        for j in jobs
    )
    left = sum((j.get("WarmPoolStatus") or {}).get("Status") == "Available" for j in jobs)
    return {"wall": wall, "jobs": len(jobs), "reuse": warm / (trials - parallel), "left": left}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    off = run(args.trials, args.parallel, args.scale, keep_alive=0)
    on = run(args.trials, args.parallel, args.scale, keep_alive=300)
    print(
        f"K={args.trials} P={args.parallel}; cold {10 * args.scale:g} s, warm"
        f" {args.scale:g} s, pool lag {args.scale:g} s; job 1 s"
    )
    for label, r in (("keep-alive off", off), ("keep-alive on ", on)):
        print(
            f"{label}: wall {r['wall']:6.1f} s  jobs {r['jobs']:.0f}  reuse ratio"
            f" {r['reuse']:.2f}  pools left Available {r['left']:.0f}"
        )
    print(f"wall with pools: {1 - on['wall'] / off['wall']:.0%} lower")


if __name__ == "__main__":
    main()
