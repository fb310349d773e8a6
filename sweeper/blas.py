"""numpy, imported with one BLAS thread for the orchestrator's process.

numpy's wheels bring OpenBLAS, which starts a thread per core as numpy is imported;
those threads spin while they wait for work. The orchestrator's numeric work (a
sampler's few hundred points) is far too small to share out, so on a two-core machine
they only took CPU from the emulator and the jobs: at import alone about 100 ms of a
core, and 70 ms of start-up's wall time, for nothing.

Importing it through :func:`import_numpy` sets ``OPENBLAS_NUM_THREADS=1`` for that
import (OpenBLAS sizes its pool once, as it loads), then takes the variable out of the
environment again, so that the processes the sweep starts later (an MLflow worker, a
standalone tool) use their cores as they would have; the embedded emulator, which runs
the jobs, started before. A value the user set is left as it is.
"""

from __future__ import annotations

import os
import sys

VARIABLE = "OPENBLAS_NUM_THREADS"


def import_numpy() -> None:
    """Import numpy (if no module has yet) with one BLAS thread unless the user chose."""
    if "numpy" in sys.modules or VARIABLE in os.environ:
        return
    os.environ[VARIABLE] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        del os.environ[VARIABLE]
