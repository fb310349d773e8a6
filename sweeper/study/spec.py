"""The part of a space file that defines a study, stored with it and checked on load."""

from __future__ import annotations

from typing import Any

import optuna

from sweeper.config import SweepConfig
from sweeper.errors import ConfigError

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
    return {
        "objective": {"metric": config.objective.metric, "direction": config.objective.direction},
        "space": params,
    }


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
