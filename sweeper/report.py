"""``sweep.py report``: the best trials, what mattered, what failed, what it cost.

:func:`build` reads the study once and returns one JSON-able document (schema:
``report.schema.json`` beside this file, ``"schema": "sweeper.report/2"``; a
``sweeper.report/1`` file reads as /2 through :func:`upgrade`); the text
and CSV forms (:mod:`sweeper.report_text`) are renderings of that document, so the three
never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from sweeper import pareto
from sweeper.config import Goal, SweepConfig
from sweeper.cost import Price
from sweeper.study import ATTEMPT, JOB_NAME, OWNER, PRUNED_AT
from sweeper.study.fronts import feasible, pareto_trials, ranked
from sweeper.study.records import WARM_FROM, ran_here
from sweeper.study.storage import redacted

SCHEMA = "sweeper.report/2"


def build(
    config: SweepConfig,
    trials: list[FrozenTrial],
    importances: dict[str, float],
    top: int,
    notes: dict[int, str] | None = None,
    runs: dict[int, dict[str, Any]] | None = None,
    warm_pools: tuple[dict[str, str], dict[str, int]] | None = None,
    reference: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The report document of a sweep's trials, with its ``top`` best trials (several
    objectives: the first ``top`` of the Pareto front, and the whole front with its
    hypervolume against ``reference``, or the worst values observed); ``runs`` are the
    trials' Experiments runs (:meth:`SweepStudy.runs`), ``warm_pools`` each job's pool
    status and retained seconds (:meth:`SweepStudy.warm_pools`)."""
    statuses, retained = warm_pools or ({}, {})
    goal = config.goal
    parents = [t for t in trials if not ran_here(t)]  # shown apart, never ranked
    trials = [t for t in trials if ran_here(t)]
    front = pareto_trials(trials, goal.directions)
    ranked = front if not goal.single else _ranked(trials, goal.objectives[0].direction)
    row = _Rows(
        goal,
        {t.number for t in front},
        notes or {},
        runs or {},
        _Costs(Price.of(config.estimator), retained),
    )
    objectives = [{"metric": o.metric, "direction": o.direction} for o in goal.objectives]
    return {
        "schema": SCHEMA,
        "sweep": config.name,
        "storage": redacted(config.storage_url),
        "objective": objectives[0],
        "objectives": objectives,
        "constraints": [{"metric": c.metric, "max": c.max, "min": c.min} for c in goal.constraints],
        "counts": _counts(trials),
        "totals": _totals(trials, config.estimator.use_spot_instances, row.costs)
        | {"warm_pool_reuses": _reuses(config, statuses)},
        "best": row.of(ranked[0]) if ranked and goal.single else None,
        "top": [row.of(t) for t in ranked[:top]],
        "front": [row.of(t) for t in front],
        "hypervolume": None if goal.single else _hypervolume(goal, trials, front, reference),
        "importances": importances,
        "failures": _failures(trials),
        "trials": [row.of(t) for t in trials],
        "warm_start": _warm_start(parents, row) if parents else None,
    }


def _warm_start(parents: list[FrozenTrial], row: _Rows) -> dict[str, Any]:
    """A warm start's parent trials (mode identical), by the sweep they came from."""
    by: dict[str, int] = {}
    for t in parents:
        study = str(t.user_attrs[WARM_FROM]).rsplit("#", 1)[0]
        by[study] = by.get(study, 0) + 1
    return {"from": by, "trials": [row.of(t) for t in parents]}


def _ranked(trials: list[FrozenTrial], direction: str) -> list[FrozenTrial]:
    """A single objective's feasible complete trials, best first."""
    return sorted(ranked(trials), key=lambda t: t.values[0], reverse=direction == "maximize")


def _hypervolume(
    goal: Goal, trials: list[FrozenTrial], front: list[FrozenTrial], given: Sequence[float] | None
) -> dict[str, Any] | None:
    """The front's hypervolume against ``given``, or the worst values observed among the
    complete trials (None before any completed)."""
    done = [tuple(t.values) for t in trials if t.state == TrialState.COMPLETE and t.values]
    if given is None and not done:
        return None
    ref = tuple(given) if given is not None else pareto.reference(done, goal.directions)
    points = [tuple(t.values) for t in front]
    value = pareto.hypervolume(points, ref, goal.directions)
    return {"value": value, "reference": list(ref), "given": given is not None}


def _state(t: FrozenTrial) -> str:
    """complete, fail, running, pruned (stopped early by the pruner) or not_launched."""
    if t.state == TrialState.PRUNED and PRUNED_AT not in t.user_attrs:
        return "not_launched"  # Optuna's PRUNED also closes trials no job ran for
    return "running" if t.state == TrialState.WAITING else t.state.name.lower()


def _counts(trials: list[FrozenTrial]) -> dict[str, int]:
    states = [_state(t) for t in trials]
    keys = ("complete", "fail", "running", "pruned", "not_launched")
    return {k: states.count(k) for k in keys} | {"total": len(trials)}


@dataclass(frozen=True, slots=True)
class _Costs:
    """Prices a trial's job: its billable seconds and its pool's retained seconds."""

    price: Price | None
    retained: dict[str, int]  # job -> ResourceRetainedBillableTimeInSeconds

    def pool_seconds(self, job: object) -> int | None:
        return self.retained.get(str(job))

    def of(self, billable: int | None, job: object = None) -> float | None:
        if self.price is None or billable is None:
            return None
        return round(self.price.job(billable, self.pool_seconds(job) or 0), 4)


@dataclass(frozen=True, slots=True)
class _Rows:
    """Makes a trial's row of the document."""

    goal: Goal
    on_front: set[int]
    notes: dict[int, str]
    runs: dict[int, dict[str, Any]]
    costs: _Costs

    def of(self, t: FrozenTrial) -> dict[str, Any]:
        a, run, costs = t.user_attrs, self.runs.get(t.number, {}), self.costs
        done = t.state == TrialState.COMPLETE and bool(t.values)
        values = list(t.values) if done else None
        return {
            "number": t.number,
            "state": _state(t),
            "pruned_at_step": a.get(PRUNED_AT),
            "value": values[0] if values and self.goal.single else None,
            "values": values,
            "feasible": feasible(t) if done and self.goal.constraints else None,
            "constraints": dict(t.constraints),
            "on_front": t.number in self.on_front,
            "params": dict(t.params),
            "job": a.get(JOB_NAME),
            "attempt": a.get(ATTEMPT, 1),
            "job_seconds": a.get("job_seconds"),
            "billable_seconds": a.get("billable_seconds"),
            "pool_seconds": costs.pool_seconds(a.get(JOB_NAME)),
            "cost": costs.of(a.get("billable_seconds"), a.get(JOB_NAME)),
            "failure": a.get("failure") or a.get("pruned"),
            "note": self.notes.get(t.number),
            "experiment": run.get("experiment"),
            "run": run.get("run"),
            "orchestrator": a.get(OWNER),
        }


def _totals(trials: list[FrozenTrial], spot: bool, costs: _Costs) -> dict[str, Any]:
    """Sums over the trials; spot savings (1 - billable / training) only for spot sweeps."""
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    training = sum(t.user_attrs.get("training_seconds") or 0 for t in trials)
    billable = sum(t.user_attrs.get("billable_seconds") or 0 for t in trials)
    retained = sum(costs.retained.values())
    pool_cost = None if costs.price is None else round(costs.price.job(0, retained), 4)
    return {
        "wall_seconds": wall,
        "job_seconds": sum(t.user_attrs.get("job_seconds") or 0.0 for t in trials),
        "training_seconds": training,
        "billable_seconds": billable,
        "spot_savings": 1 - billable / training if training and spot else None,
        "warm_pool_seconds": retained,
        "warm_pool_cost": pool_cost,
        "cost": None if pool_cost is None else (costs.of(billable) or 0.0) + pool_cost,
        "pruning_saved_seconds": _pruning_saved(trials),
    }


def _pruning_saved(trials: list[FrozenTrial]) -> int | None:
    """Billable seconds pruning saved, estimated: what each pruned trial would have
    billed had it run as long as the completed ones do on average, less what it did
    (None when nothing was pruned, or nothing completed to compare with)."""

    def billable(t: FrozenTrial) -> int:
        return int(t.user_attrs.get("billable_seconds") or 0)

    done = [billable(t) for t in trials if t.state == TrialState.COMPLETE]
    pruned = [billable(t) for t in trials if PRUNED_AT in t.user_attrs]
    if not pruned or not done:
        return None
    full = sum(done) / len(done)
    return round(sum(max(0.0, full - b) for b in pruned))


def _reuses(config: SweepConfig, pools: dict[str, str]) -> int | None:
    """How many jobs' warm pools a later job took over (None: the sweep keeps no pools)."""
    if not config.estimator.keep_alive_period_in_seconds:
        return None
    return sum(status == "Reused" for status in pools.values())


def _failures(trials: list[FrozenTrial]) -> list[dict[str, Any]]:
    """Failed trials grouped by the first line of their reason, most frequent first."""
    groups: dict[str, list[FrozenTrial]] = defaultdict(list)
    for t in trials:
        if t.state == TrialState.FAIL:
            reason = str(t.user_attrs.get("failure", "unknown"))
            groups[reason.splitlines()[0][:200]].append(t)
    return [
        {
            "reason": first,
            "count": len(ts),
            "trials": [t.number for t in ts],
            "example": ts[-1].user_attrs.get("failure", ""),
        }
        for first, ts in sorted(groups.items(), key=lambda kv: -len(kv[1]))
    ]


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """A report document of any schema Sweeper wrote, as ``sweeper.report/2``: a /1
    document (one objective, no constraints) gains ``objectives``, ``constraints``,
    ``front`` (its best trial), ``hypervolume`` (null) and, on each trial, ``values``,
    ``feasible``, ``constraints`` and ``on_front``. A /2 document is returned as it is;
    another raises ValueError."""
    if doc.get("schema") == SCHEMA:
        return doc
    if doc.get("schema") != "sweeper.report/1":
        raise ValueError(f"not a Sweeper report: schema {doc.get('schema')!r}")
    best = doc["best"]["number"] if doc.get("best") else None

    def trial(t: dict[str, Any]) -> dict[str, Any]:
        values = [t["value"]] if t.get("value") is not None else None
        extra = {
            "values": values,
            "feasible": None,
            "constraints": {},
            "on_front": t["number"] == best,
        }
        return t | extra

    out = dict(doc) | {"schema": SCHEMA, "objectives": [doc["objective"]], "constraints": []}
    for key in ("top", "trials"):
        out[key] = [trial(t) for t in doc[key]]
    out["best"] = trial(doc["best"]) if doc.get("best") else None
    out["front"] = [out["best"]] if out["best"] else []
    out["hypervolume"] = None
    return out
