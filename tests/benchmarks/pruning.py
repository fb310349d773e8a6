"""Early stopping: the learning-curve example with Hyperband and without a pruner.

    python tests/benchmarks/pruning.py [--seeds 3] [--trials 24] [--epoch-seconds 0.5]

Runs ``search_spaces/pruning.yaml`` through ``sweep.py`` on the embedded emulator, with
``pruner.kind: hyperband`` (as the example sets it) and with ``none``, for each sampler
seed, and prints for each run: the best objective, billable seconds, wall time and the
trials pruned; then, per pruner, the means over the seeds.

Targets (issue 12): best objective within 1 % of no pruning, with at least 40 % fewer
billable seconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]


def run(kind: str, seed: int, trials: int, epoch_seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(ROOT / "src", root / "src")
        (root / "search_spaces").mkdir()
        doc: dict[str, Any] = yaml.safe_load((ROOT / "search_spaces" / "pruning.yaml").read_text())
        doc["budget"]["max_trials"] = trials
        doc["sampler"]["seed"] = seed
        doc["estimator"]["hyperparameters"]["epoch_seconds"] = epoch_seconds
        if kind == "none":
            doc["pruner"] = {"kind": "none"}
        space = root / "search_spaces" / "pruning.yaml"
        space.write_text(yaml.safe_dump(doc))
        sweep = [sys.executable, str(ROOT / "sweep.py")]
        start = time.monotonic()
        done = subprocess.run([*sweep, str(space)], capture_output=True, text=True)
        wall = time.monotonic() - start
        if done.returncode != 0:
            raise SystemExit(f"sweep failed:\n{done.stdout}\n{done.stderr}")
        report = json.loads(
            subprocess.run(
                [*sweep, "report", str(space), "--json"], capture_output=True, text=True
            ).stdout
        )
    return {
        "best": report["best"]["value"],
        "billable": report["totals"]["billable_seconds"],
        "wall": wall,
        "pruned": report["counts"]["pruned"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epoch-seconds", type=float, default=0.5)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"hyperband": [], "none": []}
    print(f"{args.trials} trials, 20 epochs of {args.epoch_seconds:g} s, 4 at a time")
    for seed in range(1, args.seeds + 1):
        for kind in results:
            r = run(kind, seed, args.trials, args.epoch_seconds)
            results[kind].append(r)
            print(
                f"seed {seed} {kind:<9}: best {r['best']:.4f}  billable {r['billable']:5.0f} s"
                f"  wall {r['wall']:6.1f} s  pruned {r['pruned']:.0f}"
            )
    mean = {k: {m: statistics.mean(r[m] for r in v) for m in v[0]} for k, v in results.items()}
    for kind, m in mean.items():
        print(
            f"mean {kind:<9}: best {m['best']:.4f}  billable {m['billable']:5.0f} s"
            f"  wall {m['wall']:6.1f} s  pruned {m['pruned']:.1f}"
        )
    hb, none = mean["hyperband"], mean["none"]
    print(
        f"hyperband vs none: best {hb['best'] / none['best'] - 1:+.2%},"
        f" billable {1 - hb['billable'] / none['billable']:.0%} fewer,"
        f" wall {1 - hb['wall'] / none['wall']:.0%} shorter"
    )


if __name__ == "__main__":
    main()
