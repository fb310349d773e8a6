"""Several objectives: the Pareto front each sampler finds on the multi-objective example.

    python tests/benchmarks/multi_objective.py [--seeds 3] [--trials 40] [--asks-at 1000]

Runs ``search_spaces/multi_objective.yaml`` (accuracy against model size on the digits
data, models over 1.5 MB infeasible) through ``sweep.py`` on the embedded emulator with
``nsga2``, ``tpe`` (multi-objective TPE) and ``random``, for each sampler seed, and
prints the hypervolume of each report's Pareto front against a reference point fixed in
advance (accuracy 0.8, 1500 kB: the constraint), so runs compare; then, per sampler, the
mean and spread over the seeds. Last, the time each sampler takes per ask once a study
holds ``--asks-at`` complete trials of the same two objectives and constraint (values
drawn at random: the sampler's own cost, not the jobs').
"""

from __future__ import annotations

import argparse
import json
import random
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
EXAMPLE = ROOT / "search_spaces" / "multi_objective.yaml"
SAMPLERS = ("nsga2", "tpe", "random")
REFERENCE = "0.8,1500"


def _document(kind: str, seed: int, trials: int) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    doc["budget"]["max_trials"] = trials
    doc["sampler"] = {"kind": kind, "seed": seed}
    if kind == "nsga2":
        doc["sampler"]["population_size"] = 8
    if kind == "random":  # random ignores constraints: they are scored in the report alone
        doc.pop("constraints")
    return doc


def run(kind: str, seed: int, trials: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(ROOT / "src", root / "src")
        (root / "search_spaces").mkdir()
        space = root / "search_spaces" / "multi_objective.yaml"
        space.write_text(yaml.safe_dump(_document(kind, seed, trials)))
        sweep = [sys.executable, str(ROOT / "sweep.py")]
        start = time.monotonic()
        done = subprocess.run([*sweep, str(space)], capture_output=True, text=True)
        wall = time.monotonic() - start
        if done.returncode != 0:
            raise SystemExit(f"sweep failed:\n{done.stdout}\n{done.stderr}")
        asked = [*sweep, "report", str(space), "--json", "--reference", REFERENCE]
        doc = json.loads(subprocess.run(asked, capture_output=True, text=True).stdout)
    # random was not told the constraint: count only its feasible trials, as the others'
    front = [t for t in doc["front"] if t["values"][1] <= 1500]
    return {"hypervolume": _hypervolume(front), "front": len(front), "wall": wall}


def _hypervolume(front: list[dict[str, Any]]) -> float:
    from sweeper import pareto

    points = [tuple(t["values"]) for t in front]
    return pareto.hypervolume(points, (0.8, 1500.0), ("maximize", "minimize"))


def ask_seconds(kind: str, told: int, asks: int = 10) -> float:
    """Mean seconds per ask of ``kind`` over a study already holding ``told`` trials."""
    import optuna

    from sweeper import config
    from sweeper.study.algorithms import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = config.parse(_document(kind, 0, told), EXAMPLE)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(cfg))
    rng = random.Random(0)
    from sweeper import space as space_mod

    distributions = space_mod.distributions(cfg.space)
    for _ in range(told):
        trial = study.ask(distributions)
        size = rng.uniform(50, 3500)
        if kind != "random":
            trial.set_constraint("model_kb<=1500", size - 1500)
        study.tell(trial, [rng.uniform(0.85, 0.98), size])
    start = time.perf_counter()
    for _ in range(asks):
        study.tell(study.ask(distributions), [0.9, 500.0])
    return (time.perf_counter() - start) / asks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--asks-at", type=int, default=1000)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {k: [] for k in SAMPLERS}
    for seed in range(args.seeds):
        for kind in SAMPLERS:
            found = run(kind, seed, args.trials)
            results[kind].append(found)
            print(
                f"{kind:<7} seed {seed}: hypervolume {found['hypervolume']:8.3f}, front"
                f" {found['front']:.0f} trials, wall {found['wall']:.0f} s",
                flush=True,
            )
    print(f"\nafter {args.trials} trials, reference ({REFERENCE}), {args.seeds} seeds:")
    for kind, runs in results.items():
        volumes = [r["hypervolume"] for r in runs]
        spread = statistics.stdev(volumes) if len(volumes) > 1 else 0.0
        print(f"  {kind:<7} hypervolume mean {statistics.mean(volumes):8.3f} (sd {spread:.3f})")
    print(f"\nseconds per ask with {args.asks_at} complete trials:")
    for kind in SAMPLERS:
        print(f"  {kind:<7} {ask_seconds(kind, args.asks_at):.4f}", flush=True)


if __name__ == "__main__":
    main()
