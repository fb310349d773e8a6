"""The Pareto front of a study's trials: feasible COMPLETE trials no other dominates."""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial, TrialState

from sweeper import pareto
from sweeper.study.records import ran_here


def feasible(trial: FrozenTrial) -> bool:
    """Whether every constraint set on ``trial`` holds (a trial without any: True)."""
    return pareto.holds(trial.constraints)


def ranked(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The feasible COMPLETE trials of ``trials`` this sweep ran (not a warm start's
    parents'): those the front and the best are of."""
    return [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.values and feasible(t) and ran_here(t)
    ]


def pareto_trials(trials: Sequence[FrozenTrial], directions: Sequence[str]) -> list[FrozenTrial]:
    """The feasible COMPLETE trials of ``trials`` that no other such trial dominates,
    ordered by the first objective, best first (then by number)."""
    done = ranked(trials)
    points = [pareto.losses(t.values, directions) for t in done]
    on = [done[i] for i in pareto.front(points)]
    return sorted(on, key=lambda t: (pareto.losses(t.values, directions), t.number))
