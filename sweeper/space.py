"""The search space: config parameters as Optuna distributions, or as a grid."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import optuna.distributions as od

from sweeper.config import Param, ParamType


def distributions(space: Sequence[Param]) -> dict[str, od.BaseDistribution]:
    """One Optuna distribution per parameter, in space-file order."""
    return {p.name: _distribution(p) for p in space}


def _distribution(p: Param) -> od.BaseDistribution:
    if p.type == ParamType.CATEGORICAL:
        return od.CategoricalDistribution(list(p.choices))
    if p.values:  # an explicit grid: sample among the listed values
        return od.CategoricalDistribution(list(p.values))
    assert p.low is not None and p.high is not None  # guaranteed by config validation
    if p.type == ParamType.INT:
        return od.IntDistribution(int(p.low), int(p.high), log=p.log, step=int(p.step or 1))
    return od.FloatDistribution(p.low, p.high, log=p.log, step=p.step)


def grid(space: Sequence[Param]) -> dict[str, list[Any]]:
    """The grid for ``sampler.kind: grid``: listed ``values`` or a categorical's choices."""
    return {p.name: list(p.values or p.choices) for p in space}


def grid_size(space: Sequence[Param]) -> int:
    """How many distinct points the grid has."""
    return math.prod(len(v) for v in grid(space).values())
