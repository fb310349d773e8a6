"""From what Python hands :class:`sweeper.Sweep` (a space file, a dict, a SweepConfig, and
perhaps an SDK Estimator) to the validated config and the source of its jobs.

Validation is the space file's (:func:`sweeper.config.parse`): the same one-line
:class:`~sweeper.errors.ConfigError` messages as ``python sweep.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweeper import config as config_mod
from sweeper.config import BackendKind, SweepConfig, reading
from sweeper.errors import ConfigError
from sweeper.templates import JobSource, SpaceFileJobs

Spec = Mapping[str, Any] | SweepConfig


def configure(
    spec: Spec,
    base: Path,
    estimator: Any = None,
    inputs: Mapping[str, Any] | None = None,
    origin: Path | None = None,
) -> tuple[SweepConfig, JobSource]:
    """The sweep's config and jobs. A dict's relative paths resolve against ``base``,
    where its state (``.sweeps/``) lives too; ``origin`` is the file it was read from."""
    if inputs and estimator is None:
        raise ConfigError("inputs: only with an estimator (a spec gives estimator.inputs)")
    if isinstance(spec, SweepConfig):
        if estimator is not None:
            raise ConfigError(
                "estimator: pass the spec as a dict or a file with an Estimator, not a"
                " SweepConfig (its estimator section is already resolved)"
            )
        return spec, SpaceFileJobs()
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"spec: expected a dict (the space file's keys) or a SweepConfig, got"
            f" {type(spec).__name__}; for a file use Sweep.from_file(path)"
        )
    raw = dict(spec)
    if estimator is None:
        return _parsed(raw, base, origin), SpaceFileJobs()
    return _with_estimator(raw, base, estimator, inputs, origin)


def from_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Path]:
    """A space file's document, and the file."""
    where = Path(path)
    document = reading.document(where)
    if not isinstance(document, dict):
        config_mod.load(where)  # raises the command line's error for it
    assert isinstance(document, dict)
    return document, where


def _with_estimator(
    raw: dict[str, Any],
    base: Path,
    estimator: Any,
    inputs: Mapping[str, Any] | None,
    origin: Path | None,
) -> tuple[SweepConfig, JobSource]:
    from sweeper.api import estimators

    if not estimators.is_sdk_estimator(estimator):
        estimators.refuse_unknown(estimator)
    from sweeper.api.sdk_jobs import SdkJobs

    try:
        raw["estimator"] = estimators.section(estimator, raw.get("estimator") or {})
    except ConfigError as exc:
        raise _located(exc, origin) from None
    cfg = _parsed(raw, base, origin)
    try:
        estimators.check_conflicts(cfg.estimator.hyperparameters, cfg.space)
        if cfg.backend.kind == BackendKind.SAGEMAKER:
            estimators.require_role(estimator)
    except ConfigError as exc:
        raise _located(exc, origin) from None
    return cfg, SdkJobs(estimator, inputs)


def _parsed(raw: dict[str, Any], base: Path, origin: Path | None) -> SweepConfig:
    """The config; a dict stands at ``<base>/<name>`` (no such file needs to exist)."""
    stand_in = origin or base.absolute() / str(raw.get("name") or "sweep")
    try:
        return config_mod.parse(raw, stand_in)
    except ConfigError as exc:
        raise _located(exc, origin) from None


def _located(exc: ConfigError, origin: Path | None) -> ConfigError:
    """The error prefixed with the file, as the command line says it."""
    return ConfigError(f"{origin}: {exc}") if origin is not None else exc
