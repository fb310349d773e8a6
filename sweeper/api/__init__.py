"""The Python API: define, run and read sweeps from a script or a notebook.

``Sweep`` runs one (blocking, awaited, or on a background thread) and reads it;
``open`` reads one another process may be running; ``SweepResult`` is how a run ended,
``Trial`` one trial as the report has it, ``SweepHandle`` a background run.
"""

from sweeper.api.handle import HandleStatus, SweepHandle
from sweeper.api.sweep import Sweep
from sweeper.api.sweep import open_sweep as open
from sweeper.api.view import SweepView, Trial
from sweeper.errors import ConfigError, SweepError
from sweeper.outcome import SweepResult
from sweeper.types import OnExit

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
]
