"""The space file (``../shared/space-file.md``) parsed and validated into frozen dataclasses.

Validation happens here, at the edge, and only here: every later layer trusts these
types. A bad file raises :class:`~sweeper.errors.ConfigError` whose message names the
key path (``space.lr.low: must be < high``) and, for an unknown key, the closest known
one.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from sweeper.config import fields, pruners
from sweeper.config.model import (
    Backend,
    BackendKind,
    Budget,
    EmulatorOptions,
    Estimator,
    Experiment,
    MetricDefinition,
    Objective,
    Param,
    ParamType,
    Pruner,
    PrunerKind,
    Sampler,
    SamplerKind,
    SweepConfig,
)
from sweeper.errors import ConfigError
from sweeper.patterns import Pattern

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$")


def _keys(cls: Any, *excluded: str) -> set[str]:
    """The space-file keys of a section: its dataclass's fields."""
    return {f.name for f in dataclasses.fields(cls)} - set(excluded)


_TOP_KEYS = _keys(SweepConfig, "path")

__all__ = [
    "Backend",
    "BackendKind",
    "Budget",
    "EmulatorOptions",
    "Estimator",
    "Experiment",
    "MetricDefinition",
    "Objective",
    "Param",
    "ParamType",
    "Pruner",
    "PrunerKind",
    "Sampler",
    "SamplerKind",
    "SweepConfig",
    "emulator_options",
    "load",
    "parse",
]


def load(path: str | Path) -> SweepConfig:
    """Read and validate a space file; raise ConfigError naming the file and key path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read space file: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
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
            f"name: {name!r} must start with a letter or digit and use only letters, digits,"
            " '-', '_' or '.' (at most 120 characters)"
        )
    estimator = _estimator(fields.get(top, "estimator", "", dict), path.parent)
    objective = _objective(fields.get(top, "objective", "", dict), estimator)
    sampler = _sampler(fields.get(top, "sampler", "", dict, {}))
    space = _space(fields.get(top, "space", "", dict), sampler.kind)
    storage = fields.get(top, "storage", "", str, None)
    lease = fields.get(top, "storage_lease_seconds", "", float, 60.0)
    if not 3.0 <= lease <= 3600.0:
        raise ConfigError("storage_lease_seconds: must be between 3 and 3600")
    return SweepConfig(
        path=path,
        name=name,
        objective=objective,
        space=space,
        estimator=estimator,
        budget=_budget(fields.get(top, "budget", "", dict, {}), estimator),
        sampler=sampler,
        pruner=pruners.parse(fields.get(top, "pruner", "", dict, {})),
        experiment=_experiment(fields.get(top, "experiment", "", dict, {})),
        backend=_backend(fields.get(top, "backend", "", dict, {})),
        emulator=emulator_options(fields.get(top, "emulator", "", dict, {})),
        storage=storage,
        storage_lease_seconds=lease,
    )


# --- sections -------------------------------------------------------------------------


def _objective(raw: dict[str, Any], estimator: Estimator) -> Objective:
    sec = fields.mapping(raw, "objective", _keys(Objective))
    metric = fields.get(sec, "metric", "objective", str)
    direction = fields.get(sec, "direction", "objective", str, "maximize")
    fields.one_of(direction, ("maximize", "minimize"), "objective.direction")
    known = [m.name for m in estimator.metric_definitions]
    if metric not in known:
        raise ConfigError(
            f"objective.metric: {metric!r} is not among estimator.metric_definitions"
            f" ({', '.join(known) or 'none defined'})"
        )
    return Objective(metric=metric, direction=direction)


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
    return Sampler(kind=SamplerKind(kind), seed=fields.get(sec, "seed", "sampler", int, None))


def _space(raw: dict[str, Any], sampler: SamplerKind) -> tuple[Param, ...]:
    if not raw:
        raise ConfigError("space: must define at least one parameter")
    return tuple(_param(str(name), spec, sampler) for name, spec in raw.items())


def _param(name: str, raw: object, sampler: SamplerKind) -> Param:
    path = f"space.{name}"
    sec = fields.mapping(raw, path, _keys(Param, "name"))
    kind = fields.get(sec, "type", path, str)
    fields.one_of(kind, [t.value for t in ParamType], f"{path}.type")
    values = tuple(fields.get(sec, "values", path, list, []))
    if kind == ParamType.CATEGORICAL:
        fields.reject_keys(sec, path, ("low", "high", "log", "step"), "a categorical parameter")
        choices = tuple(fields.get(sec, "choices", path, list))
        if not choices:
            raise ConfigError(f"{path}.choices: must list at least one choice")
        return Param(name, ParamType.CATEGORICAL, choices=choices, values=values)
    number: type = int if kind == ParamType.INT else float
    low: float | None = fields.get(sec, "low", path, number, None if values else fields.MISSING)
    high: float | None = fields.get(sec, "high", path, number, None if values else fields.MISSING)
    log = fields.get(sec, "log", path, bool, False)
    step: float | None = fields.get(sec, "step", path, number, None)
    if low is not None and high is not None and low >= high:
        raise ConfigError(f"{path}.low: must be < high ({low} >= {high})")
    if log and low is not None and low <= 0:
        raise ConfigError(f"{path}.low: must be > 0 with log: true, got {low}")
    if step is not None and step <= 0:
        raise ConfigError(f"{path}.step: must be > 0, got {step}")
    if log and step is not None:
        raise ConfigError(f"{path}.step: cannot be combined with log: true")
    if sampler == SamplerKind.GRID and not values:
        raise ConfigError(f"{path}.values: sampler.kind grid needs a list of values to try")
    for i, v in enumerate(values):
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise ConfigError(f"{path}.values[{i}]: expected a number, got {v!r}")
    return Param(name, ParamType(kind), low, high, log, step, values=values)


def _estimator(raw: dict[str, Any], base: Path) -> Estimator:
    sec = fields.mapping(raw, "estimator", _keys(Estimator))
    p = "estimator"
    source_dir = (base / fields.get(sec, "source_dir", p, str, ".")).resolve()
    if not source_dir.is_dir():
        raise ConfigError(f"estimator.source_dir: directory {str(source_dir)!r} does not exist")
    entry_point = fields.get(sec, "entry_point", p, str)
    if not (source_dir / entry_point).is_file():
        raise ConfigError(
            f"estimator.entry_point: {entry_point!r} does not exist in {str(source_dir)!r}"
        )
    metrics = tuple(
        _metric_definition(m, f"estimator.metric_definitions[{i}]")
        for i, m in enumerate(fields.get(sec, "metric_definitions", p, list))
    )
    d = Estimator(entry_point, source_dir, metrics)
    est = Estimator(
        entry_point=entry_point,
        source_dir=source_dir,
        metric_definitions=metrics,
        image_uri=fields.get(sec, "image_uri", p, str, None),
        framework=fields.get(sec, "framework", p, str, None),
        framework_version=fields.get(sec, "framework_version", p, str, None),
        py_version=fields.get(sec, "py_version", p, str, None),
        instance_type=fields.get(sec, "instance_type", p, str, d.instance_type),
        instance_count=fields.get(sec, "instance_count", p, int, d.instance_count),
        volume_size=fields.get(sec, "volume_size", p, int, d.volume_size),
        role=fields.get(sec, "role", p, str, None),
        max_run=fields.get(sec, "max_run", p, int, d.max_run),
        use_spot_instances=fields.get(sec, "use_spot_instances", p, bool, False),
        max_wait=fields.get(sec, "max_wait", p, int, None),
        keep_alive_period_in_seconds=fields.get(sec, "keep_alive_period_in_seconds", p, int, 0),
        keep_pools_after_sweep=fields.get(sec, "keep_pools_after_sweep", p, bool, False),
        spot_fallback=fields.get(sec, "spot_fallback", p, str, None),
        instance_price_per_hour=fields.get(sec, "instance_price_per_hour", p, float, None),
        checkpoint_s3_uri=fields.get(sec, "checkpoint_s3_uri", p, str, None),
        output_path=fields.get(sec, "output_path", p, str, None),
        hyperparameters=fields.scalars(
            fields.get(sec, "hyperparameters", p, dict, {}), f"{p}.hyperparameters"
        ),
        environment=fields.strings(fields.get(sec, "environment", p, dict, {}), f"{p}.environment"),
        inputs=_inputs(fields.get(sec, "inputs", p, dict, {}), base),
    )
    for key in ("output_path", "checkpoint_s3_uri"):
        value = getattr(est, key)
        if value is not None and not _S3_URI.match(value):
            raise ConfigError(f"estimator.{key}: expected an s3://bucket/prefix URI, got {value!r}")
    for key in ("instance_count", "volume_size", "max_run"):
        if getattr(est, key) < 1:
            raise ConfigError(f"estimator.{key}: must be >= 1, got {getattr(est, key)}")
    if est.instance_price_per_hour is not None and est.instance_price_per_hour < 0:
        raise ConfigError("estimator.instance_price_per_hour: must be >= 0")
    if est.max_wait is not None and not est.use_spot_instances:
        raise ConfigError("estimator.max_wait: only applies with use_spot_instances: true")
    if est.max_wait is not None and est.max_wait < est.max_run:
        raise ConfigError(f"estimator.max_wait: must be >= max_run ({est.max_run})")
    if est.use_spot_instances and est.keep_alive_period_in_seconds > 0:
        raise ConfigError(
            "estimator.keep_alive_period_in_seconds: AWS does not allow warm pools with"
            " managed spot in one job; choose one: spot for cheaper instances (remove"
            " keep_alive_period_in_seconds), or warm pools for faster starts (set"
            " use_spot_instances: false)"
        )
    if est.spot_fallback is not None:
        fields.one_of(est.spot_fallback, ("on_demand",), "estimator.spot_fallback")
        if not est.use_spot_instances:
            raise ConfigError("estimator.spot_fallback: only applies with use_spot_instances: true")
    if not 0 <= est.keep_alive_period_in_seconds <= 21600:
        raise ConfigError("estimator.keep_alive_period_in_seconds: must be within 0..21600")
    return est


_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")
_CHANNEL = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")


def _inputs(raw: dict[str, Any], base: Path) -> dict[str, str]:
    """Channel → ``s3://`` URI, or an existing local path (made absolute; emulator only)."""
    inputs: dict[str, str] = {}
    for channel, value in fields.strings(raw, "estimator.inputs").items():
        path = f"estimator.inputs.{channel}"
        if not _CHANNEL.match(channel) or channel in (".", ".."):
            raise ConfigError(f"{path}: a channel name is 1-64 of A-Z a-z 0-9 . - _")
        if value.startswith("s3://"):
            if not _S3_URI.match(value):
                raise ConfigError(f"{path}: not a valid s3://bucket/prefix URI: {value!r}")
            inputs[channel] = value
            continue
        local = (base / value).resolve()
        if not local.exists():
            raise ConfigError(f"{path}: {str(local)!r} does not exist (nor is it an s3:// URI)")
        inputs[channel] = str(local)
    return inputs


def _metric_definition(raw: object, path: str) -> MetricDefinition:
    sec = fields.mapping(raw, path, _keys(MetricDefinition))
    name, regex = fields.get(sec, "name", path, str), fields.get(sec, "regex", path, str)
    compiled = _regex(regex, f"{path}.regex")
    if compiled.groups < 1:
        raise ConfigError(f"{path}.regex: needs a capture group around the value")
    if compiled.groupindex.get("step") == 1:
        raise ConfigError(
            f"{path}.regex: the value must be the first capture group (SageMaker reads"
            " group 1); put the named group 'step' after it"
        )
    return MetricDefinition(name, regex)


def _regex(text: str, path: str) -> Pattern:
    try:
        return Pattern(text, path)
    except ValueError as exc:
        raise ConfigError(f"{path}: not a valid regular expression: {exc.__cause__}") from exc


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
            _regex(value, f"emulator.{f.name}")
        elif value is not None and (
            value < 0 or (f.name.endswith(("_rate", "_discount")) and value > 1)
        ):
            raise ConfigError(f"emulator.{f.name}: out of range: {value}")
        values[f.name] = value
    return EmulatorOptions(**values)
