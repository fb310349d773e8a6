"""Several objectives and constraints: parsing and refusals, judging values as tuples,
the Pareto front and its hypervolume, and a sweep on virtual time whose sampler sees
each trial's constraints."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna._hypervolume import compute_hypervolume  # an independent reference, tests only

from sweeper import pareto, report
from sweeper.cli import main
from sweeper.clock import VirtualClock
from sweeper.config import Constraint, Goal, Objective, Sampler, SamplerKind
from sweeper.decisions import Attempt, Verdict, judge
from sweeper.errors import ConfigError, SweepError
from sweeper.queries import best_job
from sweeper.study import SweepStudy
from sweeper.types import JobState, JobStatus
from tests.helpers import space_doc, write_sweep
from tests.unit.test_scheduler import FakeBackend, make_scheduler

METRICS = [
    {"name": "loss", "regex": "loss=([0-9.eE+-]+)"},
    {"name": "size", "regex": "size=([0-9.eE+-]+)"},
]
TWO = [{"metric": "loss", "direction": "minimize"}, {"metric": "size", "direction": "minimize"}]


def _doc(**top: Any) -> dict[str, Any]:
    doc = space_doc(**top)
    doc["estimator"]["metric_definitions"] = METRICS
    if "objectives" in top:
        del doc["objective"]
    return doc


BAD = [
    ("both", {**_doc(), "objectives": TWO}, "objectives: give objective (one metric) or"),
    ("one listed", _doc(objectives=TWO[:1]), "objectives: give 2 to 4 objectives, got 1"),
    ("five", _doc(objectives=TWO + TWO + TWO[:1]), "objectives: give 2 to 4 objectives, got 5"),
    (
        "duplicated",
        _doc(objectives=[TWO[0], TWO[0]]),
        "objectives[1].metric: 'loss' is listed twice",
    ),
    (
        "bad direction",
        _doc(objectives=[TWO[0], {"metric": "size", "direction": "up"}]),
        "objectives[1].direction",
    ),
    (
        "undefined metric",
        _doc(objectives=TWO, constraints=[{"metric": "latency", "max": 3}]),
        "constraints[0].metric: 'latency' is not among estimator.metric_definitions",
    ),
    (
        "neither bound",
        _doc(objectives=TWO, constraints=[{"metric": "size"}]),
        "constraints[0]: give one of max or min",
    ),
    (
        "grid with constraints",
        _doc(
            sampler={"kind": "grid"},
            space={"x": {"type": "float", "values": [0.1, 0.2]}},
            constraints=[{"metric": "size", "max": 3}],
        ),
        "constraints: sampler.kind grid does not take constraints",
    ),
    (
        "random with constraints",
        _doc(sampler={"kind": "random"}, constraints=[{"metric": "size", "max": 3}]),
        "constraints: sampler.kind random does not take constraints",
    ),
    (
        "a pruner",
        _doc(objectives=TWO, pruner={"kind": "median"}),
        "pruner: Optuna's pruners judge one objective",
    ),
    ("a target", _doc(objectives=TWO, budget={"target": 0.1}), "budget.target: needs a single"),
    ("cma-es", _doc(objectives=TWO, sampler={"kind": "cmaes"}), "sampler.kind: cmaes optimises"),
    (
        "population of tpe",
        _doc(sampler={"kind": "tpe", "population_size": 8}),
        "sampler.population_size: only nsga2 and nsga3 take it",
    ),
]


@pytest.mark.parametrize(("what", "doc", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_goals_are_one_line_exit_2_and_launch_nothing(
    what: str, doc: dict[str, Any], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_sweep(tmp_path, doc)
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / ".sweeps").exists()  # nothing launched, no study made


GOAL = Goal(
    (Objective("loss", "minimize"), Objective("acc", "maximize")),
    (Constraint("size", max=10.0), Constraint("acc", min=0.5)),
)


def _done(**metrics: float) -> JobState:
    return JobState("j", JobStatus.COMPLETED, "Completed", final_metrics=dict(metrics))


def test_values_are_told_as_tuples_with_each_constraints_violation() -> None:
    found = judge(_done(loss=0.2, acc=0.9, size=12.0), Attempt(1), GOAL)
    assert found.verdict == Verdict.COMPLETE and found.values == (0.2, 0.9)
    assert found.violations == pytest.approx({"size<=10": 2.0, "acc>=0.5": -0.4})
    assert not found.feasible
    assert judge(_done(loss=0.2, acc=0.9, size=9.0), Attempt(1), GOAL).feasible


@pytest.mark.parametrize(
    ("metrics", "named"),
    [
        ({"acc": 0.9, "size": 1.0}, "objective metric 'loss'"),
        ({"loss": 0.1, "acc": float("nan"), "size": 1.0}, "objective metric 'acc'"),
        ({"loss": 0.1, "acc": 0.9}, "constraint metric 'size'"),
    ],
)
def test_a_job_missing_one_value_fails_naming_the_metric(
    metrics: dict[str, float], named: str
) -> None:
    found = judge(_done(**metrics), Attempt(1), GOAL)
    assert found.verdict == Verdict.FAIL and f"no value for {named}" in found.reason


def test_the_front_is_the_non_dominated_set_and_grows_as_values_come() -> None:
    rng = random.Random(5)
    for _ in range(200):
        d = rng.randint(1, 4)
        points = [tuple(rng.choice([0.0, 1.0, 2.0]) for _ in range(d)) for _ in range(20)]
        naive = [i for i, p in enumerate(points) if not any(pareto.dominates(q, p) for q in points)]
        assert pareto.front(points) == naive
        live = pareto.Front(("minimize",) * d)
        for i, p in enumerate(points):
            live.add(i, p)
        assert live.keys == naive
    one = pareto.Front(("maximize",))
    assert one.add(0, (0.5,)) and not one.add(1, (0.5,)) and one.best == 0.5  # a tie
    assert one.add(2, (0.7,)) and one.keys == [2]


def test_hypervolume_matches_an_independent_computation() -> None:
    rng = random.Random(9)
    for d in (2, 3, 4):
        for _ in range(20):
            points = [tuple(rng.random() for _ in range(d)) for _ in range(rng.randint(1, 30))]
            ours = pareto.hypervolume(points, (1.1,) * d, ("minimize",) * d)
            assert ours == pytest.approx(compute_hypervolume(np.array(points), np.full(d, 1.1)))
    # maximised objectives are mirrored; the reference is the worst value of each
    assert pareto.reference([(0.9, 3.0), (0.5, 1.0)], ("maximize", "minimize")) == (0.5, 3.0)
    area = pareto.hypervolume([(0.9, 1.0)], (0.5, 3.0), ("maximize", "minimize"))
    assert area == pytest.approx(0.4 * 2.0)


@dataclasses.dataclass
class TwoMetrics(FakeBackend):
    """Jobs that print ``loss`` (best near 0.3) and ``size`` (= 10 x): in conflict."""

    def _state(self, name: str) -> JobState:
        state = super()._state(name)
        if not state.final_metrics:
            return state
        size = 10 * self.jobs[name].x
        return dataclasses.replace(state, final_metrics={**state.final_metrics, "size": size})


class Watching(optuna.samplers.RandomSampler):
    """Records, at each ask, the constraints of the trials told so far."""

    seen: list[dict[int, dict[str, float]]]

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        self.seen.append({t.number: dict(t.constraints) for t in done})


async def test_a_sweep_tells_tuples_and_its_sampler_sees_each_trials_constraints(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    goal = Goal(
        (Objective("loss", "minimize"), Objective("size", "minimize")),
        (Constraint("size", max=5.0),),
    )
    scheduler, study, events = make_scheduler(
        tmp_path,
        TwoMetrics(clock),
        clock,
        goal=goal,
        sampler=Sampler(SamplerKind.NSGA2, seed=1, population_size=2),
        max_trials=8,
        max_parallel=2,
    )
    watching = Watching(seed=1)
    watching.seen = []
    study.study.sampler = watching
    await scheduler.run()
    trials = await study.trials()
    assert len(trials) == 8 and all(len(t.values) == 2 for t in trials)
    for t in trials:
        assert t.values[1] == pytest.approx(10 * t.params["x"])
        assert t.constraints == pytest.approx({"size<=5": t.values[1] - 5.0})
    last = watching.seen[-1]  # the last ask saw every trial told before it, constrained
    assert last and all(last[n] == trials[n].constraints for n in last)
    front = await study.front()
    feasible = [t for t in trials if t.values[1] <= 5.0]
    assert {t.number for t in front} <= {t.number for t in feasible}
    assert events.progresses[-1].front == len(front)
    assert await study.best() is None  # several objectives have no one best
    study.close()


def test_a_resumed_sweep_refuses_a_changed_list_of_objectives(tmp_path: Path) -> None:
    from sweeper import config as config_mod

    path = write_sweep(tmp_path, _doc(objectives=TWO))
    SweepStudy.open(config_mod.load(path)).close()
    write_sweep(tmp_path, _doc(objectives=[TWO[1], TWO[0]]))
    with pytest.raises(ConfigError, match="objectives was"):
        SweepStudy.open(config_mod.load(path))
    write_sweep(tmp_path, _doc(objectives=TWO, constraints=[{"metric": "size", "max": 3}]))
    with pytest.raises(ConfigError, match="constraints was added"):
        SweepStudy.open(config_mod.load(path))


def test_a_report_1_document_reads_as_2_and_download_best_needs_a_trial_with_several() -> None:
    old_trial = {"number": 0, "state": "complete", "value": 0.25, "job": "quad-0-1", "params": {}}
    old = {
        "schema": "sweeper.report/1",
        "objective": {"metric": "loss", "direction": "minimize"},
        "best": old_trial,
        "top": [old_trial],
        "trials": [old_trial],
    }
    doc = report.upgrade(old)
    assert doc["schema"] == "sweeper.report/2" and doc["objectives"] == [old["objective"]]
    assert doc["front"][0]["values"] == [0.25] and doc["trials"][0]["on_front"]
    assert best_job(doc) == "quad-0-1"
    several = doc | {"objectives": TWO}
    with pytest.raises(SweepError, match=r"--trial N .*front: 0"):
        best_job(several)
    assert best_job(several, 0) == "quad-0-1"
    with pytest.raises(ValueError, match="not a Sweeper report"):
        report.upgrade({"schema": "other"})
