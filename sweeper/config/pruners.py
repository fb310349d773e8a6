"""The space file's ``pruner:`` section: which of Optuna's pruners, with which options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sweeper.config import fields
from sweeper.config.model import Param, Pruner, PrunerKind
from sweeper.errors import ConfigError

# Each pruner's options: Optuna's keyword arguments, with their type and least value.
_COUNTS = {"n_startup_trials": 0, "n_warmup_steps": 0, "interval_steps": 1, "n_min_trials": 1}
_PRUNER_OPTIONS: dict[str, dict[str, tuple[type, float]]] = {
    "none": {},
    "median": {k: (int, v) for k, v in _COUNTS.items()},
    "percentile": {"percentile": (float, 0.0)} | {k: (int, v) for k, v in _COUNTS.items()},
    "successive_halving": {
        "min_resource": (int, 1),  # or "auto"
        "reduction_factor": (int, 2),
        "min_early_stopping_rate": (int, 0),
        "bootstrap_count": (int, 0),
    },
    "hyperband": {
        "min_resource": (int, 1),
        "max_resource": (int, 1),  # or "auto"
        "reduction_factor": (int, 2),
        "bootstrap_count": (int, 0),
    },
    "wilcoxon": {"p_threshold": (float, 0.0), "n_startup_steps": (int, 0)},
    "patient": {"patience": (int, 0), "min_delta": (float, 0.0), "wrapped": (str, 0)},
    "asha": {
        "mode": (str, 0),  # promotion (default) | stopping
        "resource": (str, 0),  # promotion: the hyperparameter that says how far to train
        "min_resource": (int, 1),
        "max_resource": (int, 1),
        "reduction_factor": (int, 2),
    },
}
_AUTO = ("min_resource", "max_resource")  # may also be "auto"
_REQUIRED = {"percentile": "percentile", "patient": "patience"}


def parse(raw: dict[str, Any]) -> Pruner:
    """The ``pruner:`` section: a kind and the options Optuna's pruner of that kind takes."""
    kind = fields.get(raw, "kind", "pruner", str, "none")
    fields.one_of(kind, [k.value for k in PrunerKind], "pruner.kind")
    known = _PRUNER_OPTIONS[kind]
    sec = fields.mapping(raw, "pruner", {"kind", *known})
    options: dict[str, Any] = {}
    for key, (kind_of, least) in known.items():
        if key in _AUTO and sec.get(key) == "auto":
            options[key] = "auto"
            continue
        value: Any = fields.get(sec, key, "pruner", kind_of, None)
        if value is None:
            if _REQUIRED.get(kind) == key:
                raise ConfigError(f"pruner.{key}: required for pruner.kind {kind}")
            continue
        if kind_of is not str and value < least:
            raise ConfigError(f"pruner.{key}: must be >= {least:g}, got {value}")
        options[key] = value
    if kind == "percentile" and options["percentile"] > 100:
        raise ConfigError("pruner.percentile: must be within 0..100")
    if "p_threshold" in options and options["p_threshold"] > 1:
        raise ConfigError("pruner.p_threshold: must be within 0..1")
    if kind == "asha":
        _check_asha(options)
    if "wrapped" in options:
        inner = [k for k in _PRUNER_OPTIONS if k not in ("none", "patient", "percentile", "asha")]
        fields.one_of(options["wrapped"], inner, "pruner.wrapped")
    return Pruner(PrunerKind(kind), options)


def _check_asha(options: dict[str, Any]) -> None:
    """``asha``: promotion needs the resource's name and its most; stopping (Optuna's
    successive halving pruner, which is ASHA's stopping form) takes neither."""
    mode = options.setdefault("mode", "promotion")
    fields.one_of(mode, ["promotion", "stopping"], "pruner.mode")
    options.setdefault("min_resource", 1)
    options.setdefault("reduction_factor", 3)
    if mode == "stopping":
        for key in ("resource", "max_resource"):
            if key in options:
                raise ConfigError(f"pruner.{key}: only with pruner.mode: promotion")
        return
    for key in ("resource", "max_resource"):
        if key not in options:
            raise ConfigError(f"pruner.{key}: required for pruner.kind asha, mode: promotion")
    if not options["resource"].isidentifier():
        raise ConfigError(
            f"pruner.resource: a hyperparameter name, got {fields.shown(options['resource'])}"
        )
    if options["max_resource"] < options["min_resource"]:
        raise ConfigError(
            f"pruner.max_resource: must be >= min_resource ({options['min_resource']}),"
            f" got {options['max_resource']}"
        )


def check_resource(pruner: Pruner, space: Sequence[Param]) -> None:
    """Promotion sets the resource itself: it cannot also be a searched parameter."""
    resource = pruner.options.get("resource")
    if resource is not None and resource in {p.name for p in space}:
        raise ConfigError(
            f"pruner.resource: {resource} is set by each rung's promotion, so it cannot be"
            " a space: parameter too; remove it from space: (or name another resource)"
        )
