"""The Python API: define, run and read sweeps from a script or a notebook.

``Sweep`` runs one (blocking, awaited, or on a background thread) and reads it;
``open`` reads one another process may be running; ``SweepResult`` is how a run ended,
``Trial`` one trial as the report has it, ``SweepHandle`` a background run;
``read_report`` a saved ``sweep.py report --json`` file, of any schema, as /2.
"""

import json
from pathlib import Path
from typing import Any

from sweeper.api.handle import HandleStatus, SweepHandle
from sweeper.api.sweep import Sweep
from sweeper.api.sweep import open_sweep as open
from sweeper.api.view import SweepView, Trial
from sweeper.errors import ConfigError, SweepError
from sweeper.outcome import SweepResult
from sweeper.types import OnExit


def read_report(path: str | Path) -> dict[str, Any]:
    """A report document saved from ``sweep.py report --json`` (``sweeper.report/1`` or
    /2), as ``sweeper.report/2``; ValueError if the file is not one. Blocking; reads only."""
    from sweeper.report import upgrade

    return upgrade(json.loads(Path(path).read_text(encoding="utf-8")))


__all__ = [
    "ConfigError",
    "HandleStatus",
    "OnExit",
    "Sweep",
    "SweepError",
    "SweepHandle",
    "SweepResult",
    "SweepView",
    "Trial",
    "open",
    "read_report",
]
