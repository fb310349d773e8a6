"""Parameter importances, by PED-ANOVA, over at most :data:`SAMPLE` complete trials.

PED-ANOVA (Optuna's default since 5.0) rather than fANOVA (the default before): fANOVA
grows a random forest, about two minutes over 2 000 trials, where PED-ANOVA takes a
tenth of a second, so a report stays quick on a large sweep whichever Optuna is
installed. ``optuna.importance`` imports scikit-learn for fANOVA when it is installed
(the quickstart's training script needs it): two of a report's seconds for nothing,
which :func:`_module` avoids.
"""

from __future__ import annotations

import importlib
import random
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

SAMPLE = 2000  # a seeded sample of this many complete trials beyond it


def evaluator() -> Any:
    """The evaluator reports use (in tables and plots alike)."""
    module = _module()
    with warnings.catch_warnings():  # experimental before Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return module.PedAnovaImportanceEvaluator()


def importances(
    trials: list[FrozenTrial], directions: Sequence[StudyDirection]
) -> dict[str, float]:
    """Each parameter's share of the objective's variation (summing to 1); with several
    objectives, of reaching the Pareto front (PED-ANOVA's multi-objective form). Empty
    under two complete trials or when no parameter varied."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if len(done) < 2:
        return {}
    if len(done) > SAMPLE:
        done = random.Random(0).sample(done, SAMPLE)
    probe = optuna.create_study(directions=list(directions))
    probe.add_trials(done)
    try:
        found = _module().get_param_importances(probe, evaluator=evaluator())
    except (RuntimeError, ValueError):  # e.g. no parameter ever varied
        return {}
    return {k: float(v) for k, v in found.items()}


def _module() -> ModuleType:
    """``optuna.importance``, imported without scikit-learn unless something else of this
    process loaded it already (fANOVA then stays usable)."""
    if "optuna.importance" in sys.modules or "sklearn.ensemble" in sys.modules:
        return importlib.import_module("optuna.importance")
    sys.modules["sklearn.ensemble"] = None  # type: ignore[assignment]  # fANOVA's import fails
    try:
        return importlib.import_module("optuna.importance")
    finally:
        del sys.modules["sklearn.ensemble"]
