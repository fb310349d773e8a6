"""Cost to quality: Sweeper's ASHA promotion raced against its Hyperband stopping, no
pruner, Syne Tune's promotion ASHA, Ray Tune's ASHA and Optuna's Hyperband pruner.

    python tests/benchmarks/cost_race.py [--seeds 3] [--budget 324] [--epoch-seconds 0.2]

One workload for all (``race_workload.py``: SGD on the digits data, epoch by epoch, 27
epochs at most, ``epoch_seconds`` standing in for an epoch's cost), random search with
the same seeds, 4 trials at a time, and one shared budget of resource units (epochs
trained, by any trial; the workload itself refuses to train past it). Every epoch is
traced with its wall time, so for each tool and seed the race reads: the best validation
accuracy within the budget, and the resource seconds (epochs x epoch_seconds) and wall
seconds until the target (``race_workload.TARGET``, fixed before any run) was first
reached. Sweeper also reports its jobs' billable seconds, which include every job's
start (a resumed trial is a new job). Wall seconds count from the command's start for
Sweeper (its imports and the embedded emulator's start included), from the tool's run
call for the peers.

The peers run in a venv of their own, ``.venv-race`` beside the checkout's root, built
on first use (Syne Tune 0.13, the last release with promotion ASHA; Ray Tune; Optuna).
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

sys.path.insert(0, str(Path(__file__).parent))
import race_workload as w

ROOT = Path(__file__).parents[2]
VENV = ROOT / ".venv-race"
PEERS = [
    "syne-tune==0.13.0",
    "ray[tune]==2.60.0",
    "pyarrow>=16,<20",  # Syne Tune 0.13 holds numpy < 1.27
    "pandas>=2,<3",
    "optuna>=4,<6",
    "scikit-learn>=1.3,<2",
]
PRUNERS: dict[str, dict[str, Any]] = {
    "sweeper asha": {
        "kind": "asha",
        "mode": "promotion",
        "resource": "epochs",
        "min_resource": 1,
        "max_resource": 27,
        "reduction_factor": 3,
    },
    "sweeper hyperband": {
        "kind": "hyperband",
        "min_resource": 1,
        "max_resource": 27,
        "reduction_factor": 3,
    },
    "sweeper none": {"kind": "none"},
}
PEER_TOOLS = {"syne-tune asha": "syne_tune", "ray asha": "ray", "optuna hyperband": "optuna"}


def peers_python() -> Path:
    """The race venv's interpreter, the venv built first if it is not there."""
    python = VENV / "bin" / "python"
    marker = VENV / "race-requirements.txt"
    current = marker.read_text() if marker.exists() else ""
    if not python.exists() or current != "\n".join(PEERS):
        print(f"building {VENV} ({', '.join(PEERS)}) ...", flush=True)
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS], check=True)
        marker.write_text("\n".join(PEERS))
    return python


def space_file(root: Path, tool: str, seed: int, a: argparse.Namespace, trace: Path) -> Path:
    (root / "src").mkdir()
    shutil.copy(Path(w.__file__), root / "src" / "race_workload.py")
    low, high = (float(v) for v in w.SPACE["alpha"])
    elow, ehigh = (float(v) for v in w.SPACE["eta0"])
    doc = {
        "name": "race",
        "objective": {"metric": "validation:accuracy", "direction": "maximize"},
        "budget": {"max_trials": 400, "max_parallel": a.parallel, "max_failures": 1},
        "sampler": {"kind": "random", "seed": seed},
        "pruner": PRUNERS[tool],
        "space": {
            "alpha": {"type": "float", "low": low, "high": high, "log": True},
            "eta0": {"type": "float", "low": elow, "high": ehigh, "log": True},
            "learning_rate": {"type": "categorical", "choices": list(w.SPACE["learning_rate"])},
        },
        "estimator": {
            "entry_point": "race_workload.py",
            "source_dir": "src",
            "instance_type": "ml.m5.large",
            "max_run": 600,
            "keep_alive_period_in_seconds": 60 if "asha" in tool else 0,
            "hyperparameters": {
                "epochs": 27,
                "epoch_seconds": a.epoch_seconds,
                "trace": str(trace),
                "budget": a.budget,
            },
            "environment": {"OMP_NUM_THREADS": "1"},
            "metric_definitions": [
                {
                    "name": "validation:accuracy",
                    "regex": "val_accuracy=([0-9.]+) epoch=(?P<step>[0-9]+)",
                }
            ],
        },
        "tracking": {"experiments": False},
    }
    path = root / "race.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run_sweeper(tool: str, seed: int, a: argparse.Namespace, trace: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        space = space_file(Path(tmp), tool, seed, a, trace)
        start = time.time()
        done = subprocess.run(
            [sys.executable, str(ROOT / "sweep.py"), str(space)], capture_output=True, text=True
        )
        if done.returncode not in (0, 1):
            raise SystemExit(f"{tool} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        report = subprocess.run(
            [sys.executable, str(ROOT / "sweep.py"), "report", str(space), "--json"],
            capture_output=True,
            text=True,
        )
        billable = json.loads(report.stdout)["totals"]["billable_seconds"]
    return {"start": start, "billable": billable}


def run_peer(tool: str, seed: int, a: argparse.Namespace, trace: Path) -> dict[str, Any]:
    args = ["--seed", str(seed), "--trace", str(trace), "--budget", str(a.budget)]
    args += ["--parallel", str(a.parallel), "--epoch-seconds", str(a.epoch_seconds)]
    script = Path(__file__).with_name("race_peers.py")
    done = subprocess.run(
        [str(peers_python()), str(script), PEER_TOOLS[tool], *args],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    if done.returncode != 0:
        raise SystemExit(f"{tool} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return {"start": json.loads(done.stdout.strip().splitlines()[-1])["start"], "billable": None}


def read_trace(trace: Path, start: float, a: argparse.Namespace) -> dict[str, Any]:
    """Best value; epochs, resource and wall seconds until the target (None: never)."""
    lines = sorted((json.loads(x) for x in trace.read_text().splitlines()), key=lambda r: r["t"])
    hit = next((i for i, r in enumerate(lines) if r["value"] >= a.target), None)
    epoch_seconds = a.epoch_seconds
    return {
        "best": max(r["value"] for r in lines),
        "units": len(lines),
        "to_target": None if hit is None else (hit + 1) * epoch_seconds,
        "wall_to_target": None if hit is None else lines[hit]["t"] - start,
        "trials": len({r["trial"] for r in lines}),
    }


def one(tool: str, seed: int, a: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.jsonl"
        ran = (run_sweeper if tool in PRUNERS else run_peer)(tool, seed, a, trace)
        return read_trace(trace, ran["start"], a) | {"billable": ran["billable"]}


def mean(values: list[float | None]) -> float | None:
    """The mean over the seeds that reached the target (None if none did)."""
    found = [v for v in values if v is not None]
    return statistics.mean(found) if found else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budget", type=int, default=324, help="epochs, all trials together")
    p.add_argument("--epoch-seconds", type=float, default=0.2)
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--target", type=float, default=w.TARGET, help="validation accuracy")
    p.add_argument("--tools", default=",".join([*PRUNERS, *PEER_TOOLS]))
    a = p.parse_args()
    tools = a.tools.split(",")
    print(
        f"budget {a.budget} epochs ({a.budget * a.epoch_seconds:g} resource s), target"
        f" accuracy {a.target}, {a.parallel} at a time, seeds 1..{a.seeds}"
    )
    results: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
    for seed in range(1, a.seeds + 1):
        for tool in tools:
            r = one(tool, seed, a)
            results[tool].append(r)
            print(f"seed {seed} {tool:<18} " + fmt(r), flush=True)
    summary(results, a.seeds)


def fmt(r: dict[str, Any]) -> str:
    def s(v: float | None, unit: str = " s") -> str:
        return "  never" if v is None else f"{v:6.1f}{unit}"

    billable = "" if r["billable"] is None else f"  billable {r['billable']:5.0f} s"
    return (
        f"best {r['best']:.4f}  to target: resource {s(r['to_target'])}, wall"
        f" {s(r['wall_to_target'])}  ({r['units']} epochs, {r['trials']} trials){billable}"
    )


def summary(results: dict[str, list[dict[str, Any]]], seeds: int) -> None:
    base = results.get("sweeper asha")
    top = max(statistics.mean(r["best"] for r in rs) for rs in results.values())
    print(f"\nmeans over seeds (to target: over the seeds that reached it; best of all {top:.4f})")
    for tool, rs in results.items():
        best = statistics.mean(r["best"] for r in rs)
        cost, wall = mean([r["to_target"] for r in rs]), mean([r["wall_to_target"] for r in rs])
        reached = sum(r["to_target"] is not None for r in rs)
        line = f"{tool:<18} best {best:.4f} ({best / top - 1:+.2%})  reached {reached}/{seeds}"
        line += f"  resource {cost or float('nan'):6.1f} s  wall {wall or float('nan'):6.1f} s"
        if base is not None and tool != "sweeper asha":
            bc, bw = mean([r["to_target"] for r in base]), mean([r["wall_to_target"] for r in base])
            if bc and cost and bw and wall:
                line += f"  sweeper asha / this: resource {bc / cost:.2f}, wall {bw / wall:.2f}"
        print(line)


if __name__ == "__main__":
    main()
