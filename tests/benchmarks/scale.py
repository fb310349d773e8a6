"""Scale: many zero-work trials at high parallelism through a standalone emulator.

    python tests/benchmarks/scale.py [--trials 1000] [--parallel 100]

The trials print their loss and exit, so the orchestrator's own costs dominate. Prints:

* trials/s: trials finished per second, from the first job's start to the last result;
* peak RSS: the orchestrator's own (``wait4``), in MB (target at 10 000 trials: <= 200);
* training-job calls per trial: Create/Describe/Search/Stop/Update TrainingJob calls the
  emulator answered, over trials (target: <= 2.5);
* exit after last result: from the orchestrator printing its last result to its exit
  (target: <= 10 s): recording (Experiments) must keep pace with the sweep;
* report: seconds of ``sweep.py report`` on the finished study (target: <= 5 s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers import (  # noqa: E402
    read_line,
    space_doc,
    standalone_emulator,
    start_sweep,
    write_sweep,
)

ZERO_WORK = "import argparse\np = argparse.ArgumentParser()\np.add_argument('-x', type=float)\n"
ZERO_WORK += "print(f'loss={(p.parse_args().x - 0.3) ** 2:.6f}')\n"
JOB_CALLS = ("TrainingJob", "Search")


def _calls(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_emulator/stats", timeout=30) as response:
        calls: dict[str, int] = json.load(response)["calls"]
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, standalone_emulator(Path(tmp) / "state") as url:
        doc = space_doc(
            budget={"max_trials": args.trials, "max_parallel": args.parallel, "max_failures": 10},
            backend={"kind": "emulator", "endpoint_url": url},
            sampler={"kind": "random", "seed": 1},
        )
        space = write_sweep(Path(tmp), doc, script=ZERO_WORK)
        before = _calls(url)
        start = time.monotonic()
        proc = start_sweep(str(space))
        first = last = None
        while line := read_line(proc, timeout=600):
            now = time.monotonic()
            if " started " in line and first is None:
                first = now
            if " finished " in line or " failed " in line:
                last = now
        _, status, usage = os.wait4(proc.pid, 0)
        ended = time.monotonic()
        after = _calls(url)
        report_start = time.monotonic()
        subprocess.run(
            [sys.executable, str(ROOT / "sweep.py"), "report", str(space)],
            check=True,
            capture_output=True,
        )
        report = time.monotonic() - report_start
        assert first is not None and last is not None, "no trial ran"
        job_calls = sum(
            n - before.get(op, 0) for op, n in after.items() if any(k in op for k in JOB_CALLS)
        )
        # Printed before the emulator stops: stopping one that ran 10 000 jobs takes a while.
        print(f"trials: {args.trials} at P={args.parallel}; exit status {status >> 8}")
        print(f"trials/s: {args.trials / (last - first):.1f}")
        print(f"peak RSS: {usage.ru_maxrss / 1024:.0f} MB")
        print(f"training-job calls per trial: {job_calls / args.trials:.2f}")
        print(f"exit after last result: {ended - last:.1f} s (whole command {ended - start:.0f} s)")
        print(f"report: {report:.1f} s", flush=True)


if __name__ == "__main__":
    main()
