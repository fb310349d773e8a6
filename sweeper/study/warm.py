"""Warm start: a new sweep learns from earlier ones (``warm_start:`` in the space file).

* ``identical``: each parent's COMPLETE trials join this study as finished trials, values
  and constraints with them, so the sampler learns from them. They are marked
  (:data:`~sweeper.study.records.WARM_FROM`), never run, never count toward the budget,
  and are left out of the front, the best trial and the runs of this sweep. A value
  outside this space is skipped and counted.
* ``transfer``: each parent's best ``top`` configurations, clipped into this space, are
  enqueued as this sweep's first trials (marked
  :data:`~sweeper.study.records.TRANSFERRED_FROM`); their values are not reused.

:func:`plan` reads the parents (read only) and refuses one that optimises something else;
:func:`apply` writes the plan once: each copy carries its parent trial's key, so a warm
start cut short is finished, not repeated, by the next open; the study attribute
:data:`WARM` says it is done (and what it added).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper import pareto, space
from sweeper.config import Param, ParamType, Parent, SweepConfig, WarmMode
from sweeper.errors import ConfigError
from sweeper.study.fronts import ranked
from sweeper.study.records import TRANSFERRED_FROM, WARM_FROM
from sweeper.study.spec import goal_spec, stored_config
from sweeper.study.storage import open_storage, release

WARM = "sweeper:warm_start"


@dataclass(frozen=True, slots=True)
class Copy:
    """One parent trial as it joins (identical) or is enqueued (transfer)."""

    key: str  # "<parent study>#<trial number>": what makes a copy idempotent
    params: dict[str, Any]
    values: tuple[float, ...] | None = None
    constraints: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    mode: WarmMode
    copies: tuple[Copy, ...]
    added: dict[str, int] = field(default_factory=dict)  # by parent (as the file names it)
    skipped: dict[str, int] = field(default_factory=dict)  # outside this space


def due(config: SweepConfig, rdb: optuna.storages.RDBStorage | None, url: str) -> bool:
    """Whether ``config`` asks for a warm start its study has not had yet (no study yet,
    or one without the :data:`WARM` record): read before the study is made, so that a
    refused parent leaves nothing behind."""
    if config.warm_start is None:
        return False
    try:
        study = optuna.load_study(study_name=config.name, storage=rdb or url)
    except KeyError:
        return True
    return WARM not in study.user_attrs


def plan(config: SweepConfig) -> Plan:
    """What the warm start adds; ConfigError (naming the ``from`` entry) for a parent
    that does not exist, optimises other objectives, or (identical) has another space."""
    warm = config.warm_start
    assert warm is not None
    copies: list[Copy] = []
    added: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for i, parent in enumerate(warm.parents):
        where = f"warm_start.from[{i}] ({parent.named})"
        try:
            trials = _checked_trials(config, parent, warm.mode)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if warm.mode == WarmMode.IDENTICAL:
            found = [_copy(parent, t) for t in trials if _inside(config.space, t.params)]
            skipped[parent.named] = len(trials) - len(found)
        else:
            best = _best(trials, config.goal.directions)[: warm.top]
            found = [
                Copy(f"{parent.study}#{t.number}", _clipped(config.space, t.params)) for t in best
            ]
        copies += found
        added[parent.named] = len(found)
    return Plan(warm.mode, tuple(copies), added, skipped)


def _checked_trials(config: SweepConfig, parent: Parent, mode: WarmMode) -> list[FrozenTrial]:
    theirs = stored_config(parent.storage, parent.study)
    ours_goal, their_goal = goal_spec(config.goal), goal_spec(theirs.goal)
    objectives = [ours_goal.get(k) for k in ("objective", "objectives")]
    if objectives != [their_goal.get(k) for k in ("objective", "objectives")]:
        raise ConfigError(
            f"it optimises {_goal_text(theirs.goal.objectives)}, this sweep"
            f" {_goal_text(config.goal.objectives)}: a warm start needs the same objectives"
        )
    if mode == WarmMode.IDENTICAL:
        if ours_goal.get("constraints") != their_goal.get("constraints"):
            raise ConfigError("its constraints differ (mode: transfer reuses configurations only)")
        ours = {p.name: p.type for p in config.space}
        if ours != {p.name: p.type for p in theirs.space}:
            raise ConfigError(
                "its parameters differ in names or types from this space (mode: identical needs"
                " the same; mode: transfer clips configurations into this space)"
            )
    return [t for t in _complete(parent) if WARM_FROM not in t.user_attrs]


def _goal_text(objectives: Sequence[Any]) -> str:
    return ", ".join(f"{o.direction} {o.metric}" for o in objectives)


def _complete(parent: Parent) -> list[FrozenTrial]:
    rdb = open_storage(parent.storage, read_only=True)
    try:
        study = optuna.load_study(study_name=parent.study, storage=rdb or parent.storage)
        return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    finally:
        if rdb is not None:
            release(rdb)


def _copy(parent: Parent, trial: FrozenTrial) -> Copy:
    constraints = trial.system_attrs.get("constraints")
    return Copy(
        f"{parent.study}#{trial.number}",
        dict(trial.params),
        tuple(trial.values),
        tuple(constraints) if constraints is not None else None,
    )


def _best(trials: list[FrozenTrial], directions: Sequence[str]) -> list[FrozenTrial]:
    """Best first: by how many others dominate a trial (0: on the front), then by the
    first objective; feasible trials only."""
    done = ranked(trials)
    losses = [pareto.losses(t.values, directions) for t in done]
    beaten = [sum(pareto.dominates(o, mine) for o in losses) for mine in losses]
    order = sorted(range(len(done)), key=lambda i: (beaten[i], losses[i], done[i].number))
    return [done[i] for i in order]


def _inside(params: Sequence[Param], values: dict[str, Any]) -> bool:
    """Whether every value lies in this space (ranges, steps, choices)."""
    return all(_holds(p, values[p.name]) for p in params if p.name in values)


def _holds(p: Param, value: Any) -> bool:
    if p.type == ParamType.CATEGORICAL or p.values:
        return value in (p.values or p.choices)
    assert p.low is not None and p.high is not None
    if not isinstance(value, int | float) or not p.low <= value <= p.high:
        return False
    if p.step is None:
        return p.type == ParamType.FLOAT or float(value).is_integer()
    steps = (value - p.low) / p.step
    return math.isclose(steps, round(steps), abs_tol=1e-8)


def _clipped(params: Sequence[Param], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` moved into this space: numbers clipped to the range and onto its step,
    a choice this space lacks (or a parameter it lacks) left for the sampler."""
    out: dict[str, Any] = {}
    for p in params:
        if p.name not in values:
            continue
        value = values[p.name]
        if p.type == ParamType.CATEGORICAL or p.values:
            if value in (p.values or p.choices):
                out[p.name] = value
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[p.name] = _onto(p, float(value))
    return out


def _onto(p: Param, value: float) -> float | int:
    assert p.low is not None and p.high is not None
    value = min(max(value, p.low), p.high)
    step = p.step or (1 if p.type == ParamType.INT else None)
    if step is not None:
        value = min(p.low + round((value - p.low) / step) * step, p.high)
    return round(value) if p.type == ParamType.INT else value


def apply(study: optuna.Study, config: SweepConfig, planned: Plan) -> dict[str, Any]:
    """Write ``planned`` into ``study`` (what an earlier, cut-short apply wrote is not
    written again), then mark the warm start done; return the record it leaves."""
    marks = (WARM_FROM, TRANSFERRED_FROM)
    present = {
        str(t.user_attrs[m])
        for t in study.get_trials(deepcopy=False)
        for m in marks
        if m in t.user_attrs
    }
    dists = space.distributions(config.space)
    for copy in planned.copies:
        if copy.key in present:
            continue
        if planned.mode == WarmMode.TRANSFER:
            study.enqueue_trial(
                copy.params, user_attrs={TRANSFERRED_FROM: copy.key}, skip_if_exists=False
            )
            continue
        system = {"constraints": list(copy.constraints)} if copy.constraints is not None else {}
        trial = optuna.trial.create_trial(
            params=copy.params,
            distributions={k: dists[k] for k in copy.params},
            values=list(copy.values or ()),
            user_attrs={WARM_FROM: copy.key},
            system_attrs=system,
        )
        study.add_trial(trial)
    numbers = sorted(
        t.number for t in study.get_trials(deepcopy=False) if WARM_FROM in t.user_attrs
    )
    record = {
        "mode": str(planned.mode),
        "added": planned.added,
        "skipped": planned.skipped,
        "numbers": numbers,
    }
    study.set_user_attr(WARM, record)
    return record
