"""``sweep.py report``: the best trials, what mattered, what failed, what it cost.

:func:`build` reads the study once and returns one JSON-able document (schema:
``report.schema.json`` beside this file, ``"schema": "sweeper.report/1"``); the text
and CSV forms (:mod:`sweeper.report_text`) are renderings of that document, so the three
never disagree.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from sweeper.config import SweepConfig
from sweeper.cost import Price
from sweeper.study import ATTEMPT, JOB_NAME, OWNER, PRUNED_AT
from sweeper.study.storage import redacted

SCHEMA = "sweeper.report/1"


def build(
    config: SweepConfig,
    trials: list[FrozenTrial],
    importances: dict[str, float],
    top: int,
    notes: dict[int, str] | None = None,
    runs: dict[int, dict[str, Any]] | None = None,
    warm_pools: tuple[dict[str, str], dict[str, int]] | None = None,
) -> dict[str, Any]:
    """The report document of a sweep's trials, with its ``top`` best trials; ``runs``
    are the trials' Experiments runs (:meth:`SweepStudy.runs`), ``warm_pools`` each job's
    pool status and retained seconds (:meth:`SweepStudy.warm_pools`)."""
    notes = notes or {}
    runs = runs or {}
    statuses, retained = warm_pools or ({}, {})
    price = Price.of(config.estimator)
    costs = _Costs(price, retained)
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    done.sort(
        key=lambda t: t.value if t.value is not None else math.nan,
        reverse=config.objective.direction == "maximize",
    )
    return {
        "schema": SCHEMA,
        "sweep": config.name,
        "storage": redacted(config.storage_url),
        "objective": {"metric": config.objective.metric, "direction": config.objective.direction},
        "counts": _counts(trials),
        "totals": _totals(trials, config.estimator.use_spot_instances, costs)
        | {"warm_pool_reuses": _reuses(config, statuses)},
        "best": _trial(done[0], notes, runs, costs) if done else None,
        "top": [_trial(t, notes, runs, costs) for t in done[:top]],
        "importances": importances,
        "failures": _failures(trials),
        "trials": [_trial(t, notes, runs, costs) for t in trials],
    }


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


def _trial(
    t: FrozenTrial, notes: dict[int, str], runs: dict[int, dict[str, Any]], costs: _Costs
) -> dict[str, Any]:
    a, run = t.user_attrs, runs.get(t.number, {})
    return {
        "number": t.number,
        "state": _state(t),
        "pruned_at_step": a.get(PRUNED_AT),
        "value": t.value,
        "params": dict(t.params),
        "job": a.get(JOB_NAME),
        "attempt": a.get(ATTEMPT, 1),
        "job_seconds": a.get("job_seconds"),
        "billable_seconds": a.get("billable_seconds"),
        "pool_seconds": costs.pool_seconds(a.get(JOB_NAME)),
        "cost": costs.of(a.get("billable_seconds"), a.get(JOB_NAME)),
        "failure": a.get("failure") or a.get("pruned"),
        "note": notes.get(t.number),
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
