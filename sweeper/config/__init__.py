"""The space file (``../shared/space-file.md``) parsed and validated into frozen dataclasses.

Validation happens here, at the edge, and only here: every later layer trusts these
types. A bad file raises :class:`~sweeper.errors.ConfigError` whose message names the
key path (``space.lr.low: must be < high``) and, for an unknown key, the closest known
one.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweeper.config import fields, goals, pruners, reading, warm
from sweeper.config.estimator import (
    MAX_HYPERPARAMETERS,
    check_hyperparameter,
    parse_estimator,
    regex,
)
from sweeper.config.model import (
    Backend,
    BackendKind,
    Budget,
    Constraint,
    EmulatorOptions,
    Estimator,
    Experiment,
    Goal,
    MetricDefinition,
    Mlflow,
    Objective,
    Param,
    ParamType,
    Parent,
    Pruner,
    PrunerKind,
    Sampler,
    SamplerKind,
    SweepConfig,
    Tracking,
    WarmMode,
    WarmStart,
)
from sweeper.config.tracking import parse_tracking
from sweeper.errors import ConfigError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$")


_keys = fields.keys_of
_TOP_KEYS = _keys(SweepConfig, "path", "goal") | {"objective", "objectives", "constraints"}

__all__ = [
    "Backend",
    "BackendKind",
    "Budget",
    "Constraint",
    "EmulatorOptions",
    "Estimator",
    "Experiment",
    "Goal",
    "MetricDefinition",
    "Mlflow",
    "Objective",
    "Param",
    "ParamType",
    "Parent",
    "Pruner",
    "PrunerKind",
    "Sampler",
    "SamplerKind",
    "SweepConfig",
    "Tracking",
    "WarmMode",
    "WarmStart",
    "budget_with",
    "emulator_options",
    "load",
    "parse",
]


def load(path: str | Path) -> SweepConfig:
    """Read and validate a space file; raise ConfigError naming the file and key path."""
    path = Path(path)
    raw = reading.document(path)
    try:
        return parse(raw, path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def parse(raw: object, path: Path) -> SweepConfig:
    """Validate an already-loaded YAML document; relative paths resolve against ``path``."""
    top = fields.mapping(raw, "", _TOP_KEYS)
    name = fields.get(top, "name", "", str)
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"name: {fields.shown(name)} must start with a letter or digit and use only"
            " letters, digits, '-', '_' or '.' (at most 120 characters)"
        )
    estimator = parse_estimator(fields.get(top, "estimator", "", dict), path.parent)
    goal = goals.parse(top, estimator)
    sampler = _sampler(fields.get(top, "sampler", "", dict, {}))
    space = _space(fields.get(top, "space", "", dict), sampler)
    _check_hyperparameter_count(space, estimator)
    storage = fields.get(top, "storage", "", str, None)
    lease = fields.get(top, "storage_lease_seconds", "", float, 60.0)
    if not 3.0 <= lease <= 3600.0:
        raise ConfigError("storage_lease_seconds: must be between 3 and 3600")
    experiment = _experiment(fields.get(top, "experiment", "", dict, {}))
    budget = _budget(fields.get(top, "budget", "", dict, {}), estimator)
    pruner = pruners.parse(fields.get(top, "pruner", "", dict, {}))
    pruners.check_resource(pruner, space)
    goals.check(goal, sampler, pruner, budget)
    warm_start = warm.parse(fields.get(top, "warm_start", "", dict, None), path.parent, _parent)
    config = SweepConfig(
        path=path,
        name=name,
        goal=goal,
        space=space,
        estimator=estimator,
        budget=budget,
        sampler=sampler,
        pruner=pruner,
        experiment=experiment,
        tracking=parse_tracking(
            fields.get(top, "tracking", "", dict, {}), path.parent, experiment.name or name
        ),
        backend=_backend(fields.get(top, "backend", "", dict, {})),
        emulator=emulator_options(fields.get(top, "emulator", "", dict, {})),
        storage=storage,
        storage_lease_seconds=lease,
        warm_start=warm_start,
    )
    warm.check_not_self(warm_start, config)
    return config


def _parent(path: Path) -> SweepConfig:
    """A warm start's parent space file, without its own warm start (no chains)."""
    raw = reading.document(path)
    if isinstance(raw, dict):
        raw.pop("warm_start", None)
    try:
        return parse(raw, path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def budget_with(config: SweepConfig, values: Mapping[str, object]) -> Budget:
    """``config``'s budget with ``values`` (as YAML gives them) in place, checked as the
    space file's own budget is; ConfigError naming the key otherwise."""
    base = {f.name: getattr(config.budget, f.name) for f in dataclasses.fields(Budget)}
    budget = _budget(base | dict(values), config.estimator)
    goals.check(config.goal, config.sampler, config.pruner, budget)
    return budget


# --- sections -------------------------------------------------------------------------


def _budget(raw: dict[str, Any], estimator: Estimator) -> Budget:
    sec = fields.mapping(raw, "budget", _keys(Budget))
    d = Budget()
    budget = Budget(
        max_trials=fields.get(sec, "max_trials", "budget", int, d.max_trials),
        max_parallel=fields.get(sec, "max_parallel", "budget", int, d.max_parallel),
        max_failures=fields.get(sec, "max_failures", "budget", int, d.max_failures),
        max_wall_seconds=fields.get(sec, "max_wall_seconds", "budget", float, None),
        max_billable_seconds=fields.get(sec, "max_billable_seconds", "budget", float, None),
        target=fields.get(sec, "target", "budget", float, None),
        patience=fields.get(sec, "patience", "budget", int, None),
        max_cost=fields.get(sec, "max_cost", "budget", float, None),
    )
    for key in ("max_trials", "max_parallel", "max_failures", "patience"):
        value = getattr(budget, key)
        if value is not None and value < 1:
            raise ConfigError(f"budget.{key}: must be >= 1, got {value}")
    for key in ("max_wall_seconds", "max_billable_seconds", "max_cost"):
        value = getattr(budget, key)
        if value is not None and value <= 0:
            raise ConfigError(f"budget.{key}: must be > 0, got {value}")
    if budget.max_cost is not None and estimator.instance_price_per_hour is None:
        raise ConfigError(
            "budget.max_cost: needs estimator.instance_price_per_hour (USD per instance-hour,"
            " on demand) to turn billable seconds into money"
        )
    return budget


def _sampler(raw: dict[str, Any]) -> Sampler:
    sec = fields.mapping(raw, "sampler", _keys(Sampler))
    kind = fields.get(sec, "kind", "sampler", str, "tpe")
    fields.one_of(kind, [k.value for k in SamplerKind], "sampler.kind")
    seed = fields.get(sec, "seed", "sampler", int, None)
    if seed is not None and not 0 <= seed < 2**32:
        raise ConfigError(
            f"sampler.seed: must be within 0..{2**32 - 1} (numpy's seeds), got {seed}"
        )
    limit = fields.get(sec, "max_grid_points", "sampler", int, Sampler().max_grid_points)
    if limit < 1:
        raise ConfigError(f"sampler.max_grid_points: must be >= 1, got {limit}")
    population = fields.get(sec, "population_size", "sampler", int, None)
    if population is not None:
        if kind not in (SamplerKind.NSGA2, SamplerKind.NSGA3):
            raise ConfigError("sampler.population_size: only nsga2 and nsga3 take it")
        if population < 2:
            raise ConfigError(f"sampler.population_size: must be >= 2, got {population}")
    return Sampler(SamplerKind(kind), seed, limit, population)


def _space(raw: dict[str, Any], sampler: Sampler) -> tuple[Param, ...]:
    if not raw:
        raise ConfigError("space: must define at least one parameter")
    params = tuple(_param(str(name), spec, sampler.kind) for name, spec in raw.items())
    if sampler.kind == SamplerKind.GRID:
        sizes = [len(p.values or p.choices) for p in params]
        points = math.prod(sizes)
        if points > sampler.max_grid_points:
            shape = " x ".join(map(str, sizes[:8])) + (" x ..." if len(sizes) > 8 else "")
            raise ConfigError(
                f"space: the grid has {points:,} points ({shape}), more than"
                f" sampler.max_grid_points ({sampler.max_grid_points:,}); list fewer values,"
                " or raise sampler.max_grid_points (the grid is built whole, in memory)"
            )
    return params


def _param(name: str, raw: object, sampler: SamplerKind) -> Param:
    path = f"space.{name}"
    check_hyperparameter(name, None, path)
    sec = fields.mapping(raw, path, _keys(Param, "name"))
    kind = fields.get(sec, "type", path, str)
    fields.one_of(kind, [t.value for t in ParamType], f"{path}.type")
    number: type = int if kind == ParamType.INT else float
    values = _listed(fields.get(sec, "values", path, list, []), f"{path}.values", number)
    if kind == ParamType.CATEGORICAL:
        fields.reject_keys(sec, path, ("low", "high", "log", "step"), "a categorical parameter")
        choices = _listed(fields.get(sec, "choices", path, list), f"{path}.choices", None)
        if not choices:
            raise ConfigError(f"{path}.choices: must list at least one choice")
        return Param(name, ParamType.CATEGORICAL, choices=choices, values=values)
    low: float | None = fields.get(sec, "low", path, number, None if values else fields.MISSING)
    high: float | None = fields.get(sec, "high", path, number, None if values else fields.MISSING)
    log = fields.get(sec, "log", path, bool, False)
    step: float | None = fields.get(sec, "step", path, number, None)
    if low is not None and high is not None:
        if low >= high:
            raise ConfigError(f"{path}.low: must be < high ({low} >= {high})")
        if not math.isfinite(high - low):
            raise ConfigError(f"{path}: high - low must be a finite number ({high} - {low})")
    if log and low is not None and low <= 0:
        raise ConfigError(f"{path}.low: must be > 0 with log: true, got {low}")
    if step is not None and step <= 0:
        raise ConfigError(f"{path}.step: must be > 0, got {step}")
    if log and step is not None:
        raise ConfigError(f"{path}.step: cannot be combined with log: true")
    if sampler == SamplerKind.GRID and not values:
        raise ConfigError(f"{path}.values: sampler.kind grid needs a list of values to try")
    return Param(name, ParamType(kind), low, high, log, step, values=values)


PLATFORM_HYPERPARAMETERS = 5  # sagemaker_program, _submit_directory, ... (aws/training.py)


def _check_hyperparameter_count(space: tuple[Param, ...], estimator: Estimator) -> None:
    """Sampled and static hyperparameters, with the toolkit's, within SageMaker's 100."""
    names = {p.name for p in space} | set(estimator.hyperparameters)
    for name in sorted(names):
        if name.startswith("sagemaker_"):
            where = "space" if name in {p.name for p in space} else "estimator.hyperparameters"
            raise ConfigError(
                f"{where}.{name}: names starting with sagemaker_ are the training toolkit's"
            )
    total = len(names) + PLATFORM_HYPERPARAMETERS
    if total > MAX_HYPERPARAMETERS:
        raise ConfigError(
            f"space: {len(space)} parameters and {len(estimator.hyperparameters)} static"
            f" hyperparameters make {total} hyperparameters with the training toolkit's"
            f" {PLATFORM_HYPERPARAMETERS}; SageMaker takes at most {MAX_HYPERPARAMETERS} per job"
        )


def _listed(raw: list[Any], path: str, number: type | None) -> tuple[Any, ...]:
    """A parameter's ``values`` (numbers of type ``number``) or ``choices`` (``number``
    None: strings, numbers, booleans or null), each finite and as long as SageMaker takes."""
    expected = "a number" if number is float else "an integer" if number is int else None
    for i, v in enumerate(raw):
        where = f"{path}[{i}]"
        if expected is None and not isinstance(v, str | int | float | bool | None):
            raise ConfigError(f"{where}: expected a string, number, boolean or null")
        numeric = isinstance(v, int | float) and not isinstance(v, bool)
        if expected is not None and not (numeric and (number is float or isinstance(v, int))):
            raise ConfigError(f"{where}: expected {expected}, got {fields.shown(v)}")
        if isinstance(v, float):
            fields.finite(v, where)
        elif numeric:
            fields.integer(v, where)
        check_hyperparameter("", v, where)
    return tuple(raw)


def _experiment(raw: dict[str, Any]) -> Experiment:
    sec = fields.mapping(raw, "experiment", _keys(Experiment))
    runs = fields.get(sec, "runs_per_experiment", "experiment", int, 50)
    if not 1 <= runs <= 50:
        raise ConfigError(f"experiment.runs_per_experiment: must be within 1..50, got {runs}")
    return Experiment(
        name=fields.get(sec, "name", "experiment", str, None), runs_per_experiment=runs
    )


def _backend(raw: dict[str, Any]) -> Backend:
    sec = fields.mapping(raw, "backend", _keys(Backend))
    kind = fields.get(sec, "kind", "backend", str, "emulator")
    fields.one_of(kind, [k.value for k in BackendKind], "backend.kind")
    return Backend(
        kind=BackendKind(kind),
        region=fields.get(sec, "region", "backend", str, None),
        endpoint_url=fields.get(sec, "endpoint_url", "backend", str, None),
        s3_endpoint_url=fields.get(sec, "s3_endpoint_url", "backend", str, None),
    )


def emulator_options(raw: dict[str, Any]) -> EmulatorOptions:
    """The ``emulator:`` section (or ``sweep.py emulator``'s flags, by the same names),
    validated."""
    sec = fields.mapping(raw, "emulator", _keys(EmulatorOptions))
    defaults = EmulatorOptions()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(EmulatorOptions):
        kind = EmulatorOptions.kind(f.name)
        value: Any = fields.get(sec, f.name, "emulator", kind, getattr(defaults, f.name))
        if kind is str and value is not None:
            regex(value, f"emulator.{f.name}")
        elif value is not None and (
            value < 0 or (f.name.endswith(("_rate", "_discount")) and value > 1)
        ):
            raise ConfigError(f"emulator.{f.name}: out of range: {value}")
        values[f.name] = value
    return EmulatorOptions(**values)
