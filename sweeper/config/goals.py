"""The space file's ``objective:`` or ``objectives:``, and ``constraints:``; and the
settings that only a single objective, or only a sampler that takes constraints, allows."""

from __future__ import annotations

from typing import Any

from sweeper.config import fields
from sweeper.config.model import (
    Budget,
    Constraint,
    Estimator,
    Goal,
    Objective,
    Pruner,
    PrunerKind,
    Sampler,
    SamplerKind,
)
from sweeper.errors import ConfigError

MAX_OBJECTIVES = 4
MAX_CONSTRAINTS = 20
# Optuna's samplers that read a trial's constraints (``Trial.set_constraint``).
CONSTRAINED = (SamplerKind.TPE, SamplerKind.GP, SamplerKind.NSGA2, SamplerKind.NSGA3)


def parse(top: dict[str, Any], estimator: Estimator) -> Goal:
    """The goal of a space file's top-level mapping ``top``: exactly one of
    ``objective`` (one metric) and ``objectives`` (2 to 4), and any ``constraints``."""
    one, many = top.get("objective"), top.get("objectives")
    if one is None and many is None:
        raise ConfigError(
            "objective: required key is missing (or objectives: 2 to"
            f" {MAX_OBJECTIVES} metrics, for a Pareto front)"
        )
    if one is not None and many is not None:
        raise ConfigError(
            "objectives: give objective (one metric) or objectives (several), not both"
        )
    known = [m.name for m in estimator.metric_definitions]
    objectives: tuple[Objective, ...]
    if one is not None:
        objectives = (_objective(fields.get(top, "objective", "", dict), "objective", known),)
    else:
        objectives = _objectives(fields.get(top, "objectives", "", list), known)
    raw = fields.get(top, "constraints", "", list, [])
    if len(raw) > MAX_CONSTRAINTS:
        raise ConfigError(f"constraints: at most {MAX_CONSTRAINTS}, got {len(raw)}")
    constraints = tuple(_constraint(c, f"constraints[{i}]", known) for i, c in enumerate(raw))
    keys = [c.key for c in constraints]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise ConfigError(f"constraints[{i}]: {fields.shown(key)} is listed twice")
    return Goal(objectives, constraints)


def _objectives(raw: list[Any], known: list[str]) -> tuple[Objective, ...]:
    if not 2 <= len(raw) <= MAX_OBJECTIVES:
        hint = " (for one metric, use objective:)" if len(raw) < 2 else ""
        raise ConfigError(
            f"objectives: give 2 to {MAX_OBJECTIVES} objectives, got {len(raw)}{hint}"
        )
    found = tuple(_objective(o, f"objectives[{i}]", known) for i, o in enumerate(raw))
    metrics = [o.metric for o in found]
    for i, metric in enumerate(metrics):
        if metric in metrics[:i]:
            raise ConfigError(f"objectives[{i}].metric: {fields.shown(metric)} is listed twice")
    return found


def _objective(raw: object, path: str, known: list[str]) -> Objective:
    sec = fields.mapping(raw, path, {"metric", "direction"})
    metric = fields.get(sec, "metric", path, str)
    direction = fields.get(sec, "direction", path, str, "maximize")
    fields.one_of(direction, ("maximize", "minimize"), f"{path}.direction")
    _defined(metric, f"{path}.metric", known)
    return Objective(metric=metric, direction=direction)


def _constraint(raw: object, path: str, known: list[str]) -> Constraint:
    sec = fields.mapping(raw, path, {"metric", "max", "min"})
    metric = fields.get(sec, "metric", path, str)
    _defined(metric, f"{path}.metric", known)
    high = fields.get(sec, "max", path, float, None)
    low = fields.get(sec, "min", path, float, None)
    if (high is None) == (low is None):
        raise ConfigError(
            f"{path}: give one of max or min (list the metric twice to bound it both ways)"
        )
    return Constraint(metric, max=high, min=low)


def _defined(metric: str, path: str, known: list[str]) -> None:
    if metric not in known:
        raise ConfigError(
            f"{path}: {fields.shown(metric)} is not among estimator.metric_definitions"
            f" ({', '.join(known) or 'none defined'})"
        )


def check(goal: Goal, sampler: Sampler, pruner: Pruner, budget: Budget) -> None:
    """Refuse what the goal does not allow: a pruner, ``target`` or ``patience`` with
    several objectives, CMA-ES with several, constraints on a sampler that ignores them."""
    kind = sampler.kind
    if not goal.single:
        if pruner.kind != PrunerKind.NONE:
            raise ConfigError(
                "pruner: Optuna's pruners judge one objective, so a sweep with objectives:"
                " cannot prune; set pruner.kind: none, or use objective: with constraints:"
            )
        for key in ("target", "patience"):
            if getattr(budget, key) is not None:
                raise ConfigError(
                    f"budget.{key}: needs a single objective (objectives: has no one best"
                    " value); use max_trials, max_wall_seconds, max_billable_seconds or"
                    " max_cost"
                )
        if kind == SamplerKind.CMAES:
            raise ConfigError(
                "sampler.kind: cmaes optimises a single objective; with objectives: use"
                " nsga2, nsga3, tpe, gp, random or qmc"
            )
    if goal.constraints and kind not in CONSTRAINED:
        raise ConfigError(
            f"constraints: sampler.kind {kind} does not take constraints; use one of"
            f" {', '.join(CONSTRAINED)}"
        )
