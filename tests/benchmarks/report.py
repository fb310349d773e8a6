"""Report speed: ``sweep.py report`` on a 500-trial study.

    python tests/benchmarks/report.py [--trials 500]

Builds a study of TRIALS trials (5 parameters; a tenth of them failed, with reasons)
through Sweeper's own study layer, then times the whole ``sweep.py report`` command,
interpreter start included, in its text, JSON and CSV forms. Target: under 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT))

from sweeper import config  # noqa: E402
from sweeper.study import SweepStudy  # noqa: E402
from tests.helpers import space_doc, write_sweep  # noqa: E402


async def fill(space: Path, trials: int) -> None:
    study = SweepStudy.open(config.load(space))
    rng = random.Random(0)
    for _ in range(trials):
        record = await study.ask(lambda n, attempt: f"bench-{n}-{attempt}")
        attrs = {
            "job_seconds": rng.uniform(60, 600),
            "training_seconds": 300,
            "billable_seconds": 90,
        }
        if rng.random() < 0.1:
            await study.tell_failed(
                record.number, f"AlgorithmError: error {rng.randint(1, 3)}\nTraceback", attrs
            )
        else:
            await study.tell_complete(record.number, (rng.random(),), attrs)
    study.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        doc = space_doc(
            budget={"max_trials": a.trials},
            sampler={"kind": "random", "seed": 1},
            space={
                "x": {"type": "float", "low": 0.0, "high": 1.0},
                "y": {"type": "int", "low": 1, "high": 100},
                "z": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
                "k": {"type": "int", "low": 8, "high": 128, "step": 8},
                "c": {"type": "categorical", "choices": ["a", "b", "c"]},
            },
        )
        space = write_sweep(Path(tmp), doc)
        asyncio.run(fill(space, a.trials))
        for form in ([], ["--json"], ["--csv"]):
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, str(ROOT / "sweep.py"), "report", str(space), *form],
                capture_output=True,
                text=True,
                timeout=120,
            )
            seconds = time.perf_counter() - start
            if result.returncode != 0:
                raise SystemExit(result.stderr)
            print(
                f"report {' '.join(form) or '(text)':<7} on {a.trials} trials: {seconds:.2f} s  (target < 5 s)"
            )


if __name__ == "__main__":
    main()
