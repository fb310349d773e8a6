"""Scale: many zero-work trials at high parallelism through a standalone emulator.

    python tests/benchmarks/scale.py [--trials 1000] [--parallel 100] [--hogs N]
                                     [--orchestrators K --postgres]

The trials print their loss and exit, so the orchestrator's own costs dominate.
``--hogs N`` runs N CPU-bound processes beside the sweep for its whole run (a saturated
machine: nothing may fail for being descheduled); ``--orchestrators K`` runs K
``sweep.py`` processes on the one sweep (each at ``--parallel``), on a throwaway
PostgreSQL server with ``--postgres`` (else the SQLite file they share). Prints:

* trials/s: trials finished per second, from the first job's start to the last result;
* peak RSS: each orchestrator's own (``wait4``), in MB (target at 10 000 trials: <= 200);
* training-job calls per trial: Create/Describe/Search/Stop/Update TrainingJob calls the
  emulator answered, over trials (target: <= 2.5);
* exit after last result: from an orchestrator printing its last result to the last exit
  (target: <= 10 s): recording (Experiments) must keep pace with the sweep;
* report: seconds of ``sweep.py report`` on the finished study (target: <= 5 s);
* trials by state, and each failed trial's reason (target: 0 failed); duplicates: trials
  with more than one job, or more than one Experiments run (target: 0); the budget: the
  trials launched against ``--trials`` (target: exact; orchestrators sharing a sweep may
  also leave a trial asked for as the budget ran out, ``not_launched``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT))

from tests import postgres  # noqa: E402
from tests.helpers import (  # noqa: E402
    boto3_client,
    read_line,
    space_doc,
    standalone_emulator,
    start_sweep,
    write_sweep,
)

ZERO_WORK = "import argparse\np = argparse.ArgumentParser()\np.add_argument('-x', type=float)\n"
ZERO_WORK += "print(f'loss={(p.parse_args().x - 0.3) ** 2:.6f}')\n"
JOB_CALLS = ("TrainingJob", "Search")
HOG = "while True:\n    pass\n"


def _calls(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_emulator/stats", timeout=30) as response:
        calls: dict[str, int] = json.load(response)["calls"]
    return calls


@contextlib.contextmanager
def _hogs(count: int) -> Iterator[None]:
    """``count`` CPU-bound processes for the block."""
    procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _storage(use_postgres: bool, tmp: Path) -> Iterator[str | None]:
    """A throwaway PostgreSQL database's URL, or None (the sweep's SQLite file)."""
    if not use_postgres:
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="sweeper-pg-"))  # /tmp: the postgres user can enter
    server = postgres.make(root)
    server.start()
    try:
        yield server.create_database("scale")
    finally:
        server.stop()


def _follow(procs: list[subprocess.Popen[str]]) -> tuple[float | None, float | None]:
    """Read every orchestrator's output to its end; the first start and last result."""
    first = last = None
    open_ = list(procs)
    while open_:
        for proc in list(open_):
            try:
                line = read_line(proc, timeout=0.2)
            except TimeoutError:
                continue
            if not line:
                open_.remove(proc)
                continue
            now = time.monotonic()
            if " started " in line and first is None:
                first = now
            if " finished " in line or " failed " in line:
                last = now
    return first, last


def _outcomes(space: Path) -> dict[str, Any]:
    """The finished study's trials by state, and each failed one's reason."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "sweep.py"), "report", str(space), "--json", "--top", "0"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    trials = json.loads(out)["trials"]
    states = collections.Counter(t["state"] for t in trials)
    failed = [(t["number"], t.get("failure")) for t in trials if t["state"] == "fail"]
    return {"total": len(trials), "states": dict(states), "failed": failed}


def _duplicates(url: str) -> tuple[int, int, int]:
    """Jobs, trials with more than one job, trials with more than one Experiments run."""
    sm = boto3_client(url)
    jobs = [
        s["TrainingJobName"]
        for page in sm.get_paginator("list_training_jobs").paginate(MaxResults=100)
        for s in page["TrainingJobSummaries"]
    ]
    per_trial = collections.Counter(int(n.rsplit("-", 2)[1]) for n in jobs)
    runs = collections.Counter(
        int(m[1])
        for page in sm.get_paginator("list_trial_components").paginate(MaxResults=100)
        for s in page["TrialComponentSummaries"]
        if (m := re.search(r"trial-(\d+)$", s["TrialComponentName"]))
    )
    return len(jobs), sum(n > 1 for n in per_trial.values()), sum(n > 1 for n in runs.values())


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=100)
    parser.add_argument("--hogs", type=int, default=0, help="CPU-bound processes beside it")
    parser.add_argument("--orchestrators", type=int, default=1)
    parser.add_argument("--postgres", action="store_true", help="a PostgreSQL study")
    return parser.parse_args()


def main() -> None:
    args = _args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        standalone_emulator(
            Path(tmp) / "state", "--instance-quota", "100000", stop_timeout=600
        ) as url,
        _storage(args.postgres, Path(tmp)) as storage,
        _hogs(args.hogs),
    ):
        doc = space_doc(
            budget={"max_trials": args.trials, "max_parallel": args.parallel, "max_failures": 10},
            backend={"kind": "emulator", "endpoint_url": url},
            sampler={"kind": "random", "seed": 1},
            **({"storage": storage} if storage else {}),
        )
        space = write_sweep(Path(tmp), doc, script=ZERO_WORK)
        before = _calls(url)
        start = time.monotonic()
        procs = [start_sweep(str(space)) for _ in range(args.orchestrators)]
        first, last = _follow(procs)
        finished = [os.wait4(proc.pid, 0) for proc in procs]
        ended = time.monotonic()
        after = _calls(url)
        report_start = time.monotonic()
        outcomes = _outcomes(space)
        report = time.monotonic() - report_start
        jobs, twice_launched, twice_recorded = _duplicates(url)
        assert first is not None and last is not None, "no trial ran"
        job_calls = sum(
            n - before.get(op, 0) for op, n in after.items() if any(k in op for k in JOB_CALLS)
        )
        # Printed before the emulator stops: stopping one that ran 10 000 jobs takes a while.
        statuses = ", ".join(str(status >> 8) for _, status, _ in finished)
        where = "PostgreSQL" if storage else "SQLite"
        print(
            f"trials: {args.trials} at P={args.parallel} x {args.orchestrators} orchestrator(s)"
            f" on {where}, {args.hogs} hog(s); exit status {statuses}"
        )
        print(f"trials/s: {args.trials / (last - first):.1f}")
        rss = ", ".join(f"{usage.ru_maxrss / 1024:.0f}" for _, _, usage in finished)
        print(f"peak RSS: {rss} MB")
        print(f"training-job calls per trial: {job_calls / args.trials:.2f}")
        print(f"exit after last result: {ended - last:.1f} s (whole command {ended - start:.0f} s)")
        print(f"report: {report:.1f} s")
        states = outcomes["states"]
        launched = outcomes["total"] - states.get("not_launched", 0)
        print(f"trials launched: {launched} of {args.trials} (the budget); by state: {states}")
        print(f"failed trials: {len(outcomes['failed'])}")
        for number, reason in outcomes["failed"]:
            print(f"  trial {number}: {reason}")
        print(f"jobs: {jobs}; trials with more than one job (retries too): {twice_launched}")
        print(f"trials with more than one Experiments run: {twice_recorded}", flush=True)


if __name__ == "__main__":
    main()
