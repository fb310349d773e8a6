"""Parameter importances: PED-ANOVA, without loading scikit-learn, over a bounded sample."""

from __future__ import annotations

import subprocess
import sys

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sweeper.study import importance
from tests.helpers import ROOT

X, NOISE = FloatDistribution(0, 1), FloatDistribution(0, 1)


def _trials(n: int) -> list[optuna.trial.FrozenTrial]:
    sampler = optuna.samplers.RandomSampler(seed=3)
    study = optuna.create_study(sampler=sampler)
    trials = []
    for _ in range(n):
        t = study.ask({"x": X, "noise": NOISE})
        x, noise = t.params["x"], t.params["noise"]
        trials.append(
            create_trial(
                params={"x": x, "noise": noise},
                distributions={"x": X, "noise": NOISE},
                value=(x - 0.3) ** 2 + 0.001 * noise,
            )
        )
    return trials


def test_the_parameter_the_objective_depends_on_matters_most() -> None:
    found = importance.importances(_trials(300), [optuna.study.StudyDirection.MINIMIZE])
    assert set(found) == {"x", "noise"}
    assert found["x"] > 0.8
    assert abs(sum(found.values()) - 1) < 1e-9


def test_fewer_than_two_results_have_no_importances() -> None:
    one = [*_trials(1), create_trial(state=TrialState.FAIL)]
    assert importance.importances(one, [optuna.study.StudyDirection.MINIMIZE]) == {}


def test_importances_load_no_scikit_learn() -> None:
    code = (
        "import sys; import sklearn; from sweeper.study import importance; "
        "importance.evaluator(); "
        "print('sklearn.ensemble' in sys.modules, 'optuna.importance' in sys.modules)"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.split() == ["False", "True"]
