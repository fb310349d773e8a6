"""Sweeper: asynchronous hyperparameter sweeps over SageMaker training jobs.

``sweeper.Sweep`` (and the rest of :mod:`sweeper.api`) loads on first use, so that
``import sweeper`` stays light for the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from sweeper.api import (
        ConfigError,
        HandleStatus,
        OnExit,
        Sweep,
        SweepError,
        SweepHandle,
        SweepResult,
        SweepView,
        Trial,
        open,
        read_report,
    )

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
    "__version__",
    "open",
    "read_report",
]


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from sweeper import api

        return getattr(api, name)
    raise AttributeError(f"module 'sweeper' has no attribute {name!r}")
