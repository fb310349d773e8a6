"""The validated space file: frozen dataclasses every later layer trusts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


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
    NSGA3 = "nsga3"


class PrunerKind(StrEnum):
    NONE = "none"
    MEDIAN = "median"
    PERCENTILE = "percentile"
    SUCCESSIVE_HALVING = "successive_halving"
    HYPERBAND = "hyperband"
    WILCOXON = "wilcoxon"
    PATIENT = "patient"
    ASHA = "asha"  # mode: promotion (pause and resume) or stopping (Optuna's SHA pruner)


class BackendKind(StrEnum):
    EMULATOR = "emulator"
    SAGEMAKER = "sagemaker"


@dataclass(frozen=True, slots=True)
class Objective:
    metric: str
    direction: str  # "maximize" | "minimize"

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` in this direction (the one place
        the direction is compared)."""
        return a > b if self.direction == "maximize" else a < b


@dataclass(frozen=True, slots=True)
class Constraint:
    """``metric`` must stay at most ``max`` or at least ``min`` (exactly one is set)."""

    metric: str
    max: float | None = None
    min: float | None = None

    @property
    def key(self) -> str:
        """Its name in the study (Optuna's ``Trial.set_constraint`` key), e.g. ``mb<=50``."""
        return (
            f"{self.metric}<={self.max:g}"
            if self.max is not None
            else f"{self.metric}>={self.min:g}"
        )

    def violation(self, value: float) -> float:
        """How far ``value`` breaks it: <= 0 when it holds (Optuna's convention)."""
        return value - self.max if self.max is not None else (self.min or 0.0) - value


@dataclass(frozen=True, slots=True)
class Goal:
    """What a sweep optimises: one objective or several (a Pareto front), under its
    constraints (a trial is feasible when every one holds). Values are sequences, in
    the order of ``objectives``; one objective is the length-1 case."""

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()

    @property
    def single(self) -> bool:
        return len(self.objectives) == 1

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(o.metric for o in self.objectives)

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(o.direction for o in self.objectives)

    def values(self, metrics: Mapping[str, float]) -> tuple[float, ...] | str:
        """The objectives' values among a job's final ``metrics``, or the name of the
        first objective or constraint metric it has no finite value for."""
        for name in (*self.metrics, *(c.metric for c in self.constraints)):
            value = metrics.get(name)
            if value is None or not math.isfinite(value):
                return name
        return tuple(float(metrics[name]) for name in self.metrics)

    def violations(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """Each constraint's violation (<= 0: it holds), by :attr:`Constraint.key`."""
        return {c.key: c.violation(float(metrics[c.metric])) for c in self.constraints}


@dataclass(frozen=True, slots=True)
class Budget:
    max_trials: int = 20
    max_parallel: int = 2
    max_failures: int = 5
    max_wall_seconds: float | None = None
    max_billable_seconds: float | None = None
    target: float | None = None
    patience: int | None = None
    max_cost: float | None = None  # USD; needs estimator.instance_price_per_hour


@dataclass(frozen=True, slots=True)
class Sampler:
    kind: SamplerKind = SamplerKind.TPE
    seed: int | None = None
    max_grid_points: int = 100_000  # a grid is built whole: refused beyond this
    population_size: int | None = None  # nsga2, nsga3: trials per generation (Optuna's 50)


@dataclass(frozen=True, slots=True)
class Pruner:
    """Early stopping: Optuna's pruner ``kind`` with its keyword ``options`` (validated);
    ``patient`` wraps the pruner named by ``options["wrapped"]``, if any."""

    kind: PrunerKind = PrunerKind.NONE
    options: Mapping[str, Any] = field(default_factory=dict)


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
    keep_pools_after_sweep: bool = False  # else pools are released when the sweep ends
    spot_fallback: str | None = None  # "on_demand": rerun what spot cannot serve, on demand
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
class Mlflow:
    """Where MLflow runs go: what MLflow takes as a tracking URI (``sqlite:///...``, a
    directory, ``http(s)://...``) or a SageMaker MLflow ARN, and the experiment."""

    tracking_uri: str
    experiment: str

    @property
    def arn(self) -> bool:
        """A SageMaker MLflow tracking server or app: jobs carry ``MlflowConfig``."""
        return self.tracking_uri.startswith("arn:")


@dataclass(frozen=True, slots=True)
class Tracking:
    """Where trials are recorded: SageMaker Experiments runs, MLflow runs, or both."""

    experiments: bool = True
    mlflow: Mlflow | None = None


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
    pool_available_delay_seconds: float = 1.0  # a warm pool is Available this long after
    spot_restart_delay_seconds: float = 0.0  # new spot capacity after an interruption
    spot_interrupt_on_log: str | None = None  # regex: interrupt a spot job at this line
    internal_error_on_log: str | None = None  # regex: fail a job as a lost instance does
    seed: int | None = None  # for the rates above: the same faults on every run

    @staticmethod
    def kind(name: str) -> type:
        """The type of knob ``name``: counts and seeds are integers, triggers regexes."""
        if name.endswith("_quota") or name == "seed":
            return int
        return str if name.endswith("_on_log") else float


class WarmMode(StrEnum):
    IDENTICAL = "identical"  # the parents' trials join the study, values and all
    TRANSFER = "transfer"  # the parents' best configurations run first, as new trials


@dataclass(frozen=True, slots=True)
class Parent:
    """An earlier sweep to start from: its study ``study`` in storage ``storage``;
    ``named`` is how the space file named it (a path, or the study's name)."""

    storage: str
    study: str
    named: str


@dataclass(frozen=True, slots=True)
class WarmStart:
    """``warm_start:``: up to 5 parents, how their trials are used, and (transfer) how
    many of each one's best configurations run first."""

    parents: tuple[Parent, ...]
    mode: WarmMode = WarmMode.IDENTICAL
    top: int = 5


@dataclass(frozen=True, slots=True)
class SweepConfig:
    """A validated space file. ``path`` is the file it came from; for a sweep defined in
    Python (:class:`sweeper.Sweep` with a dict), a stand-in ``<base_dir>/<name>`` that no
    file need be at: relative paths resolve against, and ``.sweeps/`` lives in, its
    folder."""

    path: Path
    name: str
    goal: Goal
    space: tuple[Param, ...]
    estimator: Estimator
    budget: Budget = Budget()
    sampler: Sampler = Sampler()
    pruner: Pruner = Pruner()
    experiment: Experiment = Experiment()
    tracking: Tracking = Tracking()
    backend: Backend = Backend()
    emulator: EmulatorOptions = EmulatorOptions()
    storage: str | None = None
    storage_lease_seconds: float = 60.0  # a silent orchestrator's trials are adopted after
    warm_start: WarmStart | None = None

    @property
    def objective(self) -> Objective:
        """The first objective: the only one of a single-objective sweep (pruning,
        ``target`` and ``patience`` need one)."""
        return self.goal.objectives[0]

    @property
    def home(self) -> Path:
        """``.sweeps/`` beside the space file: the study, failed jobs' logs, the embedded
        emulator's state (under ``<name>/``)."""
        return self.path.parent.resolve() / ".sweeps"

    @property
    def storage_url(self) -> str:
        """The Optuna storage URL; SQLite beside the space file unless ``storage`` is set."""
        if self.storage:
            return self.storage
        return f"sqlite:///{self.home / f'{self.name}.db'}"
