"""Shared test helpers: small sweeps on disk, waiting for job states without bare sleeps."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import yaml

# A training script whose objective is a known function of its hyperparameters, so a
# test can check every reported value against the parameters that produced it.
QUADRATIC = textwrap.dedent(
    """
    import argparse, os, sys, time
    p = argparse.ArgumentParser()
    p.add_argument("-x", "--x", type=float, required=True)  # SageMaker passes -x for 1-char keys
    p.add_argument("-y", "--y", type=int, default=0)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--fail_above", type=float, default=None)
    a = p.parse_args()
    time.sleep(a.sleep)
    if a.fail_above is not None and a.x > a.fail_above:
        print(f"x={a.x} is too large", file=sys.stderr)
        sys.exit(3)
    print(f"loss={(a.x - 0.3) ** 2 + a.y:.10f}")
    open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write(str(a.x))
    """
)


def objective(x: float, y: int = 0) -> float:
    """What QUADRATIC prints for these parameters (to its printed precision)."""
    return round((x - 0.3) ** 2 + y, 10)


def space_doc(**overrides: Any) -> dict[str, Any]:
    """A valid space-file document for QUADRATIC; top-level keys may be overridden."""
    doc: dict[str, Any] = {
        "name": "quad",
        "objective": {"metric": "loss", "direction": "minimize"},
        "budget": {"max_trials": 4, "max_parallel": 2, "max_failures": 3},
        "sampler": {"kind": "tpe", "seed": 7},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "estimator": {
            "entry_point": "train.py",
            "source_dir": "src",
            "max_run": 120,
            "metric_definitions": [{"name": "loss", "regex": "loss=([0-9.eE+-]+)"}],
        },
    }
    doc.update(overrides)
    return doc


def write_sweep(root: Path, doc: dict[str, Any] | None = None, script: str = QUADRATIC) -> Path:
    """Write ``root/space.yaml`` and ``root/src/train.py``; return the space file's path."""
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "train.py").write_text(script)
    path = root / "space.yaml"
    path.write_text(yaml.safe_dump(doc if doc is not None else space_doc(), sort_keys=False))
    return path


async def wait_for_job(client: Any, name: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """Describe ``name`` until it leaves InProgress/Stopping; fail after ``timeout`` s."""
    async with asyncio.timeout(timeout):
        while True:
            job: dict[str, Any] = await client.describe_training_job(TrainingJobName=name)
            if job["TrainingJobStatus"] not in ("InProgress", "Stopping"):
                return job
            await asyncio.sleep(0.02)
