"""The space file (``../shared/space-file.md``) parsed and validated into frozen dataclasses.

Validation happens here, at the edge, and only here: every later layer trusts these
types. A bad file raises :class:`~sweeper.errors.ConfigError` whose message names the
key path (``space.lr.low: must be < high``) and, for an unknown key, the closest known
one.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sweeper.errors import ConfigError

T = TypeVar("T")
_MISSING: Any = object()
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$")


class ParamType(StrEnum):
    FLOAT = "float"
    INT = "int"
    CATEGORICAL = "categorical"


class SamplerKind(StrEnum):
    TPE = "tpe"
    RANDOM = "random"
    GRID = "grid"
    CMAES = "cmaes"
    GP = "gp"
    QMC = "qmc"
    NSGA2 = "nsga2"


class BackendKind(StrEnum):
    EMULATOR = "emulator"
    SAGEMAKER = "sagemaker"


@dataclass(frozen=True, slots=True)
class Objective:
    metric: str
    direction: str  # "maximize" | "minimize"


@dataclass(frozen=True, slots=True)
class Budget:
    max_trials: int = 20
    max_parallel: int = 2
    max_failures: int = 5
    max_wall_seconds: float | None = None
    max_billable_seconds: float | None = None
    target: float | None = None
    patience: int | None = None


@dataclass(frozen=True, slots=True)
class Sampler:
    kind: SamplerKind = SamplerKind.TPE
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Param:
    """One search dimension. ``values`` is the explicit grid, when given."""

    name: str
    type: ParamType
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    values: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    name: str
    regex: str


@dataclass(frozen=True, slots=True)
class Estimator:
    """The job template, with SageMaker SDK ``Estimator`` argument names."""

    entry_point: str
    source_dir: Path
    metric_definitions: tuple[MetricDefinition, ...]
    image_uri: str | None = None
    framework: str | None = None
    framework_version: str | None = None
    py_version: str | None = None
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    volume_size: int = 30
    role: str | None = None
    max_run: int = 24 * 3600
    use_spot_instances: bool = False
    max_wait: int | None = None
    keep_alive_period_in_seconds: int = 0
    instance_price_per_hour: float | None = None  # USD, on-demand: reports show cost
    checkpoint_s3_uri: str | None = None
    output_path: str | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Experiment:
    name: str | None = None
    runs_per_experiment: int = 50


@dataclass(frozen=True, slots=True)
class Backend:
    """Where jobs run. ``region`` None: the AWS configuration's. ``s3_endpoint_url`` None:
    AWS's, or the emulator's own S3 (which it announces)."""

    kind: BackendKind = BackendKind.EMULATOR
    region: str | None = None
    endpoint_url: str | None = None
    s3_endpoint_url: str | None = None


@dataclass(frozen=True, slots=True)
class EmulatorOptions:
    """The embedded emulator's knobs; ``sweep.py emulator`` takes the same as flags."""

    cold_start_seconds: float = 0.0  # provisioning delay of a new instance
    warm_start_seconds: float = 0.0  # start delay on a reused warm pool
    spot_interruption_rate: float = 0.0  # chance that a spot job is interrupted once
    spot_interruption_after_seconds: float = 1.0  # when, into training
    spot_discount: float = 0.7  # billable = training time * (1 - discount) on spot
    throttle_rate: float = 0.0  # share of calls answered ThrottlingException
    internal_failure_rate: float = 0.0  # share of calls answered InternalFailure (500)
    instance_quota: int | None = None  # concurrent training instances per type (None: no limit)
    warm_pool_quota: int | None = None  # warm-pool instances per type (None: no limit)
    trial_component_quota: int | None = 50  # user runs per run group (AWS's default: 50)


@dataclass(frozen=True, slots=True)
class SweepConfig:
    """A validated space file. ``path`` is the file it came from."""

    path: Path
    name: str
    objective: Objective
    space: tuple[Param, ...]
    estimator: Estimator
    budget: Budget = Budget()
    sampler: Sampler = Sampler()
    experiment: Experiment = Experiment()
    backend: Backend = Backend()
    emulator: EmulatorOptions = EmulatorOptions()
    storage: str | None = None

    @property
    def storage_url(self) -> str:
        """The Optuna storage URL; SQLite beside the space file unless ``storage`` is set."""
        if self.storage:
            return self.storage
        return f"sqlite:///{self.path.parent.resolve() / '.sweeps' / f'{self.name}.db'}"


def _keys(cls: Any, *excluded: str) -> set[str]:
    """The space-file keys of a section: its dataclass's fields."""
    return {f.name for f in dataclasses.fields(cls)} - set(excluded)


_TOP_KEYS = _keys(SweepConfig, "path")


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
    top = _mapping(raw, "", _TOP_KEYS)
    name = _get(top, "name", "", str)
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"name: {name!r} must start with a letter or digit and use only letters, digits,"
            " '-', '_' or '.' (at most 120 characters)"
        )
    estimator = _estimator(_get(top, "estimator", "", dict), path.parent)
    objective = _objective(_get(top, "objective", "", dict), estimator)
    sampler = _sampler(_get(top, "sampler", "", dict, {}))
    space = _space(_get(top, "space", "", dict), sampler.kind)
    storage = _get(top, "storage", "", str, None)
    return SweepConfig(
        path=path,
        name=name,
        objective=objective,
        space=space,
        estimator=estimator,
        budget=_budget(_get(top, "budget", "", dict, {})),
        sampler=sampler,
        experiment=_experiment(_get(top, "experiment", "", dict, {})),
        backend=_backend(_get(top, "backend", "", dict, {})),
        emulator=_emulator(_get(top, "emulator", "", dict, {})),
        storage=storage,
    )


# --- sections -------------------------------------------------------------------------


def _objective(raw: dict[str, Any], estimator: Estimator) -> Objective:
    sec = _mapping(raw, "objective", _keys(Objective))
    metric = _get(sec, "metric", "objective", str)
    direction = _get(sec, "direction", "objective", str, "maximize")
    _one_of(direction, ("maximize", "minimize"), "objective.direction")
    known = [m.name for m in estimator.metric_definitions]
    if metric not in known:
        raise ConfigError(
            f"objective.metric: {metric!r} is not among estimator.metric_definitions"
            f" ({', '.join(known) or 'none defined'})"
        )
    return Objective(metric=metric, direction=direction)


def _budget(raw: dict[str, Any]) -> Budget:
    sec = _mapping(raw, "budget", _keys(Budget))
    d = Budget()
    budget = Budget(
        max_trials=_get(sec, "max_trials", "budget", int, d.max_trials),
        max_parallel=_get(sec, "max_parallel", "budget", int, d.max_parallel),
        max_failures=_get(sec, "max_failures", "budget", int, d.max_failures),
        max_wall_seconds=_get(sec, "max_wall_seconds", "budget", float, None),
        max_billable_seconds=_get(sec, "max_billable_seconds", "budget", float, None),
        target=_get(sec, "target", "budget", float, None),
        patience=_get(sec, "patience", "budget", int, None),
    )
    for key in ("max_trials", "max_parallel", "max_failures", "patience"):
        value = getattr(budget, key)
        if value is not None and value < 1:
            raise ConfigError(f"budget.{key}: must be >= 1, got {value}")
    for key in ("max_wall_seconds", "max_billable_seconds"):
        value = getattr(budget, key)
        if value is not None and value <= 0:
            raise ConfigError(f"budget.{key}: must be > 0, got {value}")
    return budget


def _sampler(raw: dict[str, Any]) -> Sampler:
    sec = _mapping(raw, "sampler", _keys(Sampler))
    kind = _get(sec, "kind", "sampler", str, "tpe")
    _one_of(kind, [k.value for k in SamplerKind], "sampler.kind")
    return Sampler(kind=SamplerKind(kind), seed=_get(sec, "seed", "sampler", int, None))


def _space(raw: dict[str, Any], sampler: SamplerKind) -> tuple[Param, ...]:
    if not raw:
        raise ConfigError("space: must define at least one parameter")
    return tuple(_param(str(name), spec, sampler) for name, spec in raw.items())


def _param(name: str, raw: object, sampler: SamplerKind) -> Param:
    path = f"space.{name}"
    sec = _mapping(raw, path, _keys(Param, "name"))
    kind = _get(sec, "type", path, str)
    _one_of(kind, [t.value for t in ParamType], f"{path}.type")
    values = tuple(_get(sec, "values", path, list, []))
    if kind == ParamType.CATEGORICAL:
        _reject_keys(sec, path, ("low", "high", "log", "step"), "a categorical parameter")
        choices = tuple(_get(sec, "choices", path, list))
        if not choices:
            raise ConfigError(f"{path}.choices: must list at least one choice")
        return Param(name, ParamType.CATEGORICAL, choices=choices, values=values)
    number: type = int if kind == ParamType.INT else float
    low: float | None = _get(sec, "low", path, number, None if values else _MISSING)
    high: float | None = _get(sec, "high", path, number, None if values else _MISSING)
    log = _get(sec, "log", path, bool, False)
    step: float | None = _get(sec, "step", path, number, None)
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
    sec = _mapping(raw, "estimator", _keys(Estimator))
    p = "estimator"
    source_dir = (base / _get(sec, "source_dir", p, str, ".")).resolve()
    if not source_dir.is_dir():
        raise ConfigError(f"estimator.source_dir: directory {str(source_dir)!r} does not exist")
    entry_point = _get(sec, "entry_point", p, str)
    if not (source_dir / entry_point).is_file():
        raise ConfigError(
            f"estimator.entry_point: {entry_point!r} does not exist in {str(source_dir)!r}"
        )
    metrics = tuple(
        _metric_definition(m, f"estimator.metric_definitions[{i}]")
        for i, m in enumerate(_get(sec, "metric_definitions", p, list))
    )
    d = Estimator(entry_point, source_dir, metrics)
    est = Estimator(
        entry_point=entry_point,
        source_dir=source_dir,
        metric_definitions=metrics,
        image_uri=_get(sec, "image_uri", p, str, None),
        framework=_get(sec, "framework", p, str, None),
        framework_version=_get(sec, "framework_version", p, str, None),
        py_version=_get(sec, "py_version", p, str, None),
        instance_type=_get(sec, "instance_type", p, str, d.instance_type),
        instance_count=_get(sec, "instance_count", p, int, d.instance_count),
        volume_size=_get(sec, "volume_size", p, int, d.volume_size),
        role=_get(sec, "role", p, str, None),
        max_run=_get(sec, "max_run", p, int, d.max_run),
        use_spot_instances=_get(sec, "use_spot_instances", p, bool, False),
        max_wait=_get(sec, "max_wait", p, int, None),
        keep_alive_period_in_seconds=_get(sec, "keep_alive_period_in_seconds", p, int, 0),
        instance_price_per_hour=_get(sec, "instance_price_per_hour", p, float, None),
        checkpoint_s3_uri=_get(sec, "checkpoint_s3_uri", p, str, None),
        output_path=_get(sec, "output_path", p, str, None),
        hyperparameters=_scalars(_get(sec, "hyperparameters", p, dict, {}), f"{p}.hyperparameters"),
        environment=_strings(_get(sec, "environment", p, dict, {}), f"{p}.environment"),
        inputs=_inputs(_get(sec, "inputs", p, dict, {}), base),
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
            "estimator.keep_alive_period_in_seconds: warm pools cannot be used with spot"
        )
    if not 0 <= est.keep_alive_period_in_seconds <= 21600:
        raise ConfigError("estimator.keep_alive_period_in_seconds: must be within 0..21600")
    return est


_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")
_CHANNEL = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")


def _inputs(raw: dict[str, Any], base: Path) -> dict[str, str]:
    """Channel → ``s3://`` URI, or an existing local path (made absolute; emulator only)."""
    inputs: dict[str, str] = {}
    for channel, value in _strings(raw, "estimator.inputs").items():
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
    sec = _mapping(raw, path, _keys(MetricDefinition))
    name, regex = _get(sec, "name", path, str), _get(sec, "regex", path, str)
    try:
        groups = re.compile(regex).groups
    except re.error as exc:
        raise ConfigError(f"{path}.regex: not a valid regular expression: {exc}") from exc
    if groups < 1:
        raise ConfigError(f"{path}.regex: needs a capture group around the value")
    return MetricDefinition(name, regex)


def _experiment(raw: dict[str, Any]) -> Experiment:
    sec = _mapping(raw, "experiment", _keys(Experiment))
    runs = _get(sec, "runs_per_experiment", "experiment", int, 50)
    if not 1 <= runs <= 50:
        raise ConfigError(f"experiment.runs_per_experiment: must be within 1..50, got {runs}")
    return Experiment(name=_get(sec, "name", "experiment", str, None), runs_per_experiment=runs)


def _backend(raw: dict[str, Any]) -> Backend:
    sec = _mapping(raw, "backend", _keys(Backend))
    kind = _get(sec, "kind", "backend", str, "emulator")
    _one_of(kind, [k.value for k in BackendKind], "backend.kind")
    return Backend(
        kind=BackendKind(kind),
        region=_get(sec, "region", "backend", str, None),
        endpoint_url=_get(sec, "endpoint_url", "backend", str, None),
        s3_endpoint_url=_get(sec, "s3_endpoint_url", "backend", str, None),
    )


def _emulator(raw: dict[str, Any]) -> EmulatorOptions:
    sec = _mapping(raw, "emulator", _keys(EmulatorOptions))
    defaults = EmulatorOptions()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(EmulatorOptions):
        kind = int if f.name.endswith("_quota") else float
        value = _get(sec, f.name, "emulator", kind, getattr(defaults, f.name))
        if value is not None and (
            value < 0 or (f.name.endswith(("_rate", "_discount")) and value > 1)
        ):
            raise ConfigError(f"emulator.{f.name}: out of range: {value}")
        values[f.name] = value
    return EmulatorOptions(**values)


# --- primitives -------------------------------------------------------------------------


def _mapping(raw: object, path: str, known: set[str]) -> dict[str, Any]:
    """Check that ``raw`` is a mapping whose keys are all known; suggest the closest."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'the file'}: expected a mapping, got {_kind(raw)}")
    for key in raw:
        if str(key) not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key{hint}")
    return raw


def _get(sec: dict[str, Any], key: str, path: str, kind: type[T], default: Any = _MISSING) -> T:
    """Fetch ``sec[key]`` as ``kind``; ``None`` or absence gives ``default`` if there is one."""
    where = f"{path}.{key}" if path else key
    value = sec.get(key)
    if value is None:
        if default is _MISSING:
            raise ConfigError(f"{where}: required key is missing")
        return default  # type: ignore[no-any-return]
    ok: dict[type, Callable[[Any], bool]] = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        dict: lambda v: isinstance(v, dict),
        list: lambda v: isinstance(v, list),
    }
    if not ok[kind](value):
        raise ConfigError(f"{where}: expected {_WORDS[kind][0]}, got {_kind(value)} {value!r}")
    return float(value) if kind is float else value  # type: ignore[return-value]


# type -> (how an expected value is named, how a value found is named)
_WORDS: dict[type, tuple[str, str]] = {
    bool: ("true or false", "boolean"),
    int: ("an integer", "integer"),
    float: ("a number", "number"),
    str: ("a string", "string"),
    dict: ("a mapping", "mapping"),
    list: ("a list", "list"),
    type(None): ("nothing", "nothing"),
}


def _kind(value: object) -> str:
    return _WORDS.get(type(value), ("", type(value).__name__))[1]


def _one_of(value: str, allowed: Any, where: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(allowed)}")


def _reject_keys(sec: dict[str, Any], path: str, keys: tuple[str, ...], what: str) -> None:
    for key in keys:
        if key in sec:
            raise ConfigError(f"{path}.{key}: does not apply to {what}")


def _scalars(raw: dict[str, Any], path: str) -> dict[str, Any]:
    for key, value in raw.items():
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"{path}.{key}: expected a string, number or boolean")
    return {str(k): v for k, v in raw.items()}


def _strings(raw: dict[str, Any], path: str) -> dict[str, str]:
    for key, value in raw.items():
        if not isinstance(value, str):
            raise ConfigError(f"{path}.{key}: expected a string, got {_kind(value)}")
    return {str(k): v for k, v in raw.items()}
