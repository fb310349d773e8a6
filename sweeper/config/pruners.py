"""The space file's ``pruner:`` section: which of Optuna's pruners, with which options."""

from __future__ import annotations

from typing import Any

from sweeper.config import fields
from sweeper.config.model import Pruner, PrunerKind
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
    if "wrapped" in options:
        inner = [k for k in _PRUNER_OPTIONS if k not in ("none", "patient", "percentile")]
        fields.one_of(options["wrapped"], inner, "pruner.wrapped")
    return Pruner(PrunerKind(kind), options)
