"""How a run of a sweep ended: what both faces (the command line, the Python API) are
handed back by the composition root (:mod:`sweeper.session`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sweeper.errors import StorageUnavailable
from sweeper.types import OnExit, StopReason

if TYPE_CHECKING:  # Optuna loads with the sweep, not with ``import sweeper.api``
    from optuna.trial import FrozenTrial

    from sweeper.study import Counts


@dataclass(frozen=True, slots=True)
class SweepResult:
    """How one run of a sweep ended, read back from the study once it had.

    ``stop_reason`` says why dispatching stopped; ``counts``, ``best`` (a single
    objective's best feasible trial) and ``front`` (the Pareto front: the feasible trials
    no other beats on every objective, by the first objective; one objective: the best
    trial) are the whole study's (earlier runs and other orchestrators included);
    ``in_flight`` are the jobs
    still running when an interrupted run let go of them (``on_exit`` says how);
    ``storage_down`` is the error that ended the run when the study's storage stayed
    away (then ``counts`` are empty, ``best`` None and ``front`` empty: nothing could be
    read).
    """

    name: str
    stop_reason: StopReason
    counts: Counts
    best: FrozenTrial | None
    elapsed: float
    in_flight: tuple[str, ...] = ()
    on_exit: OnExit = OnExit.LEAVE
    storage_down: StorageUnavailable | None = None
    front: tuple[FrozenTrial, ...] = ()

    @property
    def interrupted(self) -> bool:
        return self.stop_reason == StopReason.INTERRUPTED
