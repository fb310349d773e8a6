"""The orchestrator's numpy runs one BLAS thread; the processes it starts are not held to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

PROBE = """
import os, sys
sys.path.insert(0, sys.argv[1])
from sweeper import blas
blas.import_numpy()
import numpy
numpy.ones((64, 64)) @ numpy.ones((64, 64))  # a BLAS call: the pool is in use
print(len(os.listdir("/proc/self/task")), os.environ.get(blas.VARIABLE, "unset"))
"""


def _probe(env: dict[str, str]) -> tuple[int, str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    threads, variable = out.stdout.split()
    return int(threads), variable


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}


def test_numpy_starts_no_blas_threads_and_the_environment_is_left_as_it_was() -> None:
    threads, variable = _probe(_env())
    assert threads == 1
    assert variable == "unset"  # the sweep's children get the user's environment


def test_a_thread_count_the_user_chose_is_theirs() -> None:
    threads, variable = _probe(_env() | {"OPENBLAS_NUM_THREADS": "2"})
    assert variable == "2"
    assert threads == 2  # numpy's OpenBLAS started the pool the user asked for
