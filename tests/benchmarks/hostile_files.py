"""Hostile space files through the CLI: ``sweep.py <file> --dry-run``, in-process.

    python tests/benchmarks/hostile_files.py [--files 2000] [--seed 0] [--limit 5]

Generates FILES hostile space files (``tests/hostile.py``: values swapped for infinities,
huge numbers, long strings, paths outside the code, alias bombs, deep nesting, cut or
spliced text, bytes that are not UTF-8) and runs each through the CLI entry point as
``--dry-run`` (nothing is sent; an accepted file builds its first request). Prints how
many were clean errors (exit 2, one line), accepted, tracebacks (target 0) and hangs
(over LIMIT seconds; target 0), the slowest file of each outcome (an accepted file's
time is its dry run: the first one imports what a sweep needs, under tracemalloc), the
largest memory one file took (tracemalloc) and the process's peak RSS, and the
machine's load.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
import tracemalloc
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT))

from sweeper.cli import main as cli  # noqa: E402
from tests.helpers import write_sweep  # noqa: E402
from tests.hostile import hostile_text  # noqa: E402


class Hang(Exception):
    """A file took longer than the limit."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang


def run_one(path: Path, limit: float) -> tuple[str, str, float, int]:
    """(outcome, detail, seconds, traced peak bytes) of ``sweep.py path --dry-run``."""
    out, err = io.StringIO(), io.StringIO()
    tracemalloc.start()
    started = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli([str(path), "--dry-run"])
        outcome = {0: "accepted", 2: "clean error"}.get(code, f"exit {code}")
        detail = err.getvalue().strip()
        if code == 2 and (detail.count("\n") or not detail.startswith("error: ")):
            outcome = "messy error"
    except Hang:
        outcome, detail = "hang", ""
    except BaseException:
        outcome, detail = "traceback", traceback.format_exc(limit=-3)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, detail, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=float, default=5.0, help="seconds before a hang")
    a = parser.parse_args()
    rng = random.Random(a.seed)

    def draw(options: Any) -> Any:
        return rng.choice(list(options))

    signal.signal(signal.SIGALRM, _alarm)
    outcomes: collections.Counter[str] = collections.Counter()
    keys: collections.Counter[str] = collections.Counter()
    worst: list[str] = []
    slowest: dict[str, tuple[float, str]] = {}  # by outcome
    heaviest = (0, "")
    with tempfile.TemporaryDirectory() as tmp:
        path = write_sweep(Path(tmp))
        started = time.perf_counter()
        for i in range(a.files):
            path.write_bytes(hostile_text(draw))
            outcome, detail, seconds, peak = run_one(path, a.limit)
            outcomes[outcome] += 1
            if outcome == "clean error":
                keys[detail.removeprefix(f"error: {path}").split(": ")[1][:24]] += 1
            elif outcome not in ("accepted",) and len(worst) < 5:
                worst.append(f"file {i}: {outcome}\n{detail[-1500:]}")
            slowest[outcome] = max(slowest.get(outcome, (0.0, "")), (seconds, f"file {i}"))
            heaviest = max(heaviest, (peak, f"file {i}"))
        elapsed = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{a.files} hostile space files (seed {a.seed}) through sweep.py --dry-run, in-process")
    for outcome in ("clean error", "accepted", "messy error", "traceback", "hang"):
        print(f"  {outcome:<12} {outcomes.pop(outcome, 0):>6}")
    for outcome, n in outcomes.items():
        print(f"  {outcome:<12} {n:>6}")
    print(f"  all {a.files} files in {elapsed:.1f} s; the slowest by outcome:")
    for outcome, (seconds, which) in sorted(slowest.items()):
        print(f"    {outcome:<12} {seconds * 1000:>6.0f} ms ({which})")
    print(f"  most memory one file took: {heaviest[0] / 2**20:.1f} MiB (tracemalloc)")
    print(f"  peak RSS of the process: {rss:.0f} MiB")
    print("  errors by first key: " + ", ".join(f"{k} {n}" for k, n in keys.most_common(8)))
    print(f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for text in worst:
        print("\n" + text)


if __name__ == "__main__":
    main()
