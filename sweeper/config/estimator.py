"""The ``estimator:`` section of the space file: the job each trial runs."""

from __future__ import annotations

import difflib
import functools
import json
import re
from pathlib import Path
from typing import Any

from sweeper.aws import models
from sweeper.config import fields
from sweeper.config.model import Estimator, MetricDefinition
from sweeper.errors import ConfigError
from sweeper.patterns import Pattern


def parse_estimator(raw: dict[str, Any], base: Path) -> Estimator:
    """The ``estimator:`` section; paths resolve against ``base`` (the file's folder)."""
    sec = fields.mapping(raw, "estimator", fields.keys_of(Estimator))
    p = "estimator"
    source_dir, found = _local(base, fields.get(sec, "source_dir", p, str, "."), "source_dir")
    if found != "dir":
        raise ConfigError(
            f"estimator.source_dir: directory {fields.shown_path(source_dir)} does not exist"
        )
    entry_point = _entry_point(fields.get(sec, "entry_point", p, str), source_dir)
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
        if value is not None:
            s3_uri(value, f"estimator.{key}")
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
    _check_sagemaker_limits(est)
    return est


def _local(base: Path, text: str, key: str) -> tuple[Path, str]:
    """``base / text`` resolved, and what it is: ``"dir"``, ``"file"``, ``"other"`` or
    ``""`` (nothing there); a path the system cannot take is a ConfigError."""
    try:
        path = (base / text).resolve()
        found = "dir" if path.is_dir() else "file" if path.is_file() else ""
        return path, found or ("other" if path.exists() else "")
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"estimator.{key}: {fields.shown(text)} is not a usable path ({reason})"
        ) from None


def _entry_point(entry_point: str, source_dir: Path) -> str:
    """``entry_point`` if it names a file inside ``source_dir`` (what SageMaker uploads)."""
    where = "estimator.entry_point"
    path, found = _local(source_dir, entry_point, "entry_point")
    if found != "file":
        raise ConfigError(
            f"{where}: {fields.shown_path(entry_point)} does not exist in"
            f" {fields.shown_path(source_dir)}"
        )
    if not path.is_relative_to(source_dir):
        raise ConfigError(
            f"{where}: {fields.shown_path(entry_point)} is outside source_dir"
            f" {fields.shown_path(source_dir)}; only"
            " source_dir is uploaded, so the job could not run it"
        )
    return entry_point


# What CreateTrainingJob accepts (botocore's model of it; AWS refuses the rest).
MAX_HYPERPARAMETERS = 100
MAX_KEY, MAX_VALUE = 256, 2500  # a hyperparameter's name and JSON-encoded value
MAX_ENVIRONMENT = 100
_ENV_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,511}$")
JAVA_INT = 2**31 - 1


def _check_sagemaker_limits(est: Estimator) -> None:
    """Refuse what every CreateTrainingJob would be refused for, before any trial."""
    if est.instance_type not in _instance_types():
        hint = difflib.get_close_matches(est.instance_type, sorted(_instance_types()), n=1)
        raise ConfigError(
            f"estimator.instance_type: {fields.shown(est.instance_type)} is not a SageMaker"
            " training instance type" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        )
    for key in ("instance_count", "volume_size", "max_run", "max_wait"):
        value = getattr(est, key)
        if value is not None and value > JAVA_INT:
            raise ConfigError(f"estimator.{key}: must be at most {JAVA_INT}, got {value}")
    for name, value in est.hyperparameters.items():
        where = f"estimator.hyperparameters.{name}"
        check_hyperparameter(name, value, where)
    if len(est.environment) > MAX_ENVIRONMENT:
        raise ConfigError(
            f"estimator.environment: {len(est.environment)} variables; SageMaker takes at"
            f" most {MAX_ENVIRONMENT}"
        )
    for name, value in est.environment.items():
        if not _ENV_NAME.match(name):
            raise ConfigError(
                f"estimator.environment.{fields.shown(name)}: not a variable name (letters,"
                " digits and '_', not starting with a digit, at most 512)"
            )
        if len(value) > 512:
            raise ConfigError(f"estimator.environment.{name}: longer than 512 characters")


def check_hyperparameter(name: str, value: Any, where: str) -> None:
    """A hyperparameter's name and JSON-encoded value within SageMaker's lengths."""
    if len(name) > MAX_KEY:
        raise ConfigError(f"{where}: a hyperparameter's name is at most {MAX_KEY} characters")
    if len(json.dumps(value)) > MAX_VALUE:
        raise ConfigError(
            f"{where}: {fields.shown(value)} is longer than SageMaker takes ({MAX_VALUE}"
            " characters, JSON-encoded)"
        )


@functools.cache
def _instance_types() -> frozenset[str]:
    """SageMaker's training instance types, from botocore's model (the sweep's SageMaker
    client then reuses that parse)."""
    return models.sagemaker_enum("TrainingInstanceType")


_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")


def s3_uri(value: str, where: str) -> str:
    """``value`` if it is an ``s3://bucket/prefix`` URI SageMaker takes whose key
    segments can be folders and files (no ``.``, ``..`` or empty segment inside)."""
    if not _S3_URI.match(value) or len(value) > 1024:
        raise ConfigError(f"{where}: expected an s3://bucket/prefix URI, got {fields.shown(value)}")
    segments = value[5:].rstrip("/").split("/")[1:]
    if any(s in ("", ".", "..") for s in segments):
        raise ConfigError(
            f"{where}: {fields.shown(value)} has an empty, '.' or '..' segment; objects under"
            " it could not be written as files"
        )
    return value


_CHANNEL = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")


def _inputs(raw: dict[str, Any], base: Path) -> dict[str, str]:
    """Channel → ``s3://`` URI, or an existing local path (made absolute; emulator only)."""
    inputs: dict[str, str] = {}
    for channel, value in fields.strings(raw, "estimator.inputs").items():
        path = f"estimator.inputs.{channel}"
        if not _CHANNEL.match(channel) or channel in (".", ".."):
            raise ConfigError(f"{path}: a channel name is 1-64 of A-Z a-z 0-9 . - _")
        if value.startswith("s3://"):
            inputs[channel] = s3_uri(value, path)
            continue
        local, found = _local(base, value, f"inputs.{channel}")
        if not found:
            raise ConfigError(
                f"{path}: {fields.shown_path(local)} does not exist (nor is it an s3:// URI)"
            )
        inputs[channel] = str(local)
    return inputs


def _metric_definition(raw: object, path: str) -> MetricDefinition:
    sec = fields.mapping(raw, path, fields.keys_of(MetricDefinition))
    name, text = fields.get(sec, "name", path, str), fields.get(sec, "regex", path, str)
    compiled = regex(text, f"{path}.regex")
    if compiled.groups < 1:
        raise ConfigError(f"{path}.regex: needs a capture group around the value")
    if compiled.groupindex.get("step") == 1:
        raise ConfigError(
            f"{path}.regex: the value must be the first capture group (SageMaker reads"
            " group 1); put the named group 'step' after it"
        )
    return MetricDefinition(name, text)


def regex(text: str, path: str) -> Pattern:
    """``text`` compiled as a metric regex, or a ConfigError at ``path``."""
    try:
        return Pattern(text, path)
    except ValueError as exc:
        raise ConfigError(f"{path}: not a valid regular expression: {exc.__cause__}") from exc
