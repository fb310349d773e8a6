"""The part of a space file that defines a study, stored with it and checked on load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from sweeper.config import (
    Constraint,
    Estimator,
    Goal,
    MetricDefinition,
    Objective,
    Param,
    ParamType,
    SweepConfig,
    Tracking,
)
from sweeper.errors import ConfigError
from sweeper.study.storage import no_study_yet, open_storage, redacted, release

SPEC = "sweeper:spec"


def spec(config: SweepConfig) -> dict[str, Any]:
    """The part of a space file that defines the study; budgets may change, this may not."""
    params = {
        p.name: {
            "type": str(p.type),
            "low": p.low,
            "high": p.high,
            "log": p.log,
            "step": p.step,
            "choices": list(p.choices),
            "values": list(p.values),
        }
        for p in config.space
    }
    return goal_spec(config.goal) | {"space": params}


def goal_spec(goal: Goal) -> dict[str, Any]:
    """The goal as stored: ``objective`` for one (as before several were possible),
    ``objectives`` for several; ``constraints`` only when there are some."""
    objectives = [{"metric": o.metric, "direction": o.direction} for o in goal.objectives]
    out: dict[str, Any] = (
        {"objective": objectives[0]} if goal.single else {"objectives": objectives}
    )
    if goal.constraints:
        out["constraints"] = [
            {"metric": c.metric, "max": c.max, "min": c.min} for c in goal.constraints
        ]
    return out


def goal_of(stored: dict[str, Any]) -> Goal:
    """The goal a stored spec (:func:`goal_spec`) records."""
    objectives = stored.get("objectives") or [stored["objective"]]
    return Goal(
        tuple(Objective(**o) for o in objectives),
        tuple(Constraint(**c) for c in stored.get("constraints", [])),
    )


def check_spec(study: optuna.Study, config: SweepConfig, url: str, *, write: bool = True) -> None:
    """Refuse ``config`` if it no longer defines ``study``; store its spec if none is stored.

    ``write=False`` (a reader) stores nothing: a study that another process created a
    moment ago may not carry its spec yet, and a reader must not be the one to write it.
    """
    stored = study.user_attrs.get(SPEC)
    current = spec(config)
    if stored is None:
        if write:
            study.set_user_attr(SPEC, current)
        return
    changes = _diff(stored, current, "")
    if changes:
        raise ConfigError(
            f"the space file no longer matches sweep {config.name!r} in {url}: "
            + "; ".join(changes)
            + ". Restore those settings to continue it, or give the sweep a new name"
            " (budget, sampler and estimator settings may change freely)"
        )


def _diff(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(f"{where} was removed")
            elif key not in old:
                out.append(f"{where} was added")
            else:
                out += _diff(old[key], new[key], where)
        return out
    return [] if old == new else [f"{path} was {old!r}, now {new!r}"]


def stored_config(url: str, name: str) -> SweepConfig:
    """The config of sweep ``name`` in storage ``url`` as far as its study records it
    (objectives, constraints and space; nothing of its jobs, tracking or backend): enough
    to read the study without the space file. Raises ConfigError if there is no such sweep, or it
    records no spec (not made by Sweeper). Reads only."""
    if not url or no_study_yet(url):
        raise ConfigError(f"no sweep named {name!r} in {redacted(url) or 'memory'}")
    rdb = open_storage(url, read_only=True)
    try:
        study = optuna.load_study(study_name=name, storage=rdb or url)
        stored = study.user_attrs.get(SPEC)
    except KeyError as exc:
        raise ConfigError(f"no sweep named {name!r} in {redacted(url)}") from exc
    finally:
        if rdb is not None:
            release(rdb)
    if not isinstance(stored, dict):
        raise ConfigError(
            f"the study {name!r} in {redacted(url)} was not made by Sweeper (it records no"
            " space): open it with its space file"
        )
    return _config_of(stored, url, name)


def _config_of(stored: dict[str, Any], url: str, name: str) -> SweepConfig:
    goal = goal_of(stored)
    space = tuple(
        Param(
            name=key,
            type=ParamType(p["type"]),
            low=p["low"],
            high=p["high"],
            log=p["log"],
            step=p["step"],
            choices=tuple(p["choices"]),
            values=tuple(p["values"]),
        )
        for key, p in stored["space"].items()
    )
    metrics = dict.fromkeys([*goal.metrics, *(c.metric for c in goal.constraints)])
    estimator = Estimator("", Path("."), tuple(MetricDefinition(m, "") for m in metrics))
    return SweepConfig(
        path=Path.cwd() / name,
        name=name,
        goal=goal,
        space=space,
        estimator=estimator,
        tracking=Tracking(experiments=False),
        storage=url,
    )
