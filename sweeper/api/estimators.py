"""What Sweeper reads of a SageMaker SDK v2 Estimator handed to :class:`sweeper.Sweep`.

The Estimator (``Estimator``, ``SKLearn``, ``PyTorch``, ``HuggingFace``, any
``EstimatorBase``) is the job template; Sweeper reads only its public attributes here,
as the space file's ``estimator:`` section they stand for, so the same checks, pricing,
pools, spot and metric parsing apply as to a space file. The request itself is the
SDK's own (:mod:`sweeper.api.sdk_jobs`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweeper.config import Estimator, fields
from sweeper.errors import ConfigError

# What a spec's ``estimator:`` section may still say beside an Estimator: Sweeper's own
# settings, which no SDK argument stands for.
SWEEPER_ONLY = ("keep_pools_after_sweep", "spot_fallback", "instance_price_per_hour")

_COPIED = (  # the SDK's attribute names are the space file's keys
    "instance_type",
    "instance_count",
    "volume_size",
    "max_run",
    "use_spot_instances",
    "max_wait",
    "checkpoint_s3_uri",
    "output_path",
    "role",
)


def is_sdk_estimator(obj: object) -> bool:
    """Whether ``obj`` is an SDK v2 estimator (``sagemaker.estimator.EstimatorBase``),
    without importing the SDK when it is not loaded already."""
    import sys

    module = sys.modules.get("sagemaker.estimator")
    return module is not None and isinstance(obj, module.EstimatorBase)


def refuse_unknown(obj: object) -> None:
    """A ConfigError for what is not an SDK v2 estimator, saying what to pass instead."""
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if type(obj).__name__ == "ModelTrainer":
        raise ConfigError(
            "estimator: an SDK v3 ModelTrainer is not supported yet; pass an SDK v2"
            " Estimator (pip install 'sagemaker>=2.257,<3'), or describe the job in the"
            " spec's estimator: section"
        )
    raise ConfigError(
        f"estimator: {kind} is not a SageMaker SDK v2 Estimator (sagemaker.estimator."
        "Estimator, SKLearn, PyTorch, ...); pass one, or describe the job in the spec's"
        " estimator: section"
    )


def section(estimator: Any, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The ``estimator:`` section ``estimator`` stands for, with the Sweeper-only keys
    of ``spec`` (the spec's own section; any other key there is refused: it belongs on
    the Estimator)."""
    extra = dict(fields.mapping(spec, "estimator", fields.keys_of(Estimator)))
    for key in extra:
        if key not in SWEEPER_ONLY:
            raise ConfigError(
                f"estimator.{key}: set it on the Estimator you pass (the spec's estimator:"
                f" section may only hold {', '.join(SWEEPER_ONLY)})"
            )
    source_dir, entry_point = code_of(estimator)
    raw: dict[str, Any] = {
        "entry_point": entry_point,
        "source_dir": str(source_dir),
        "metric_definitions": [
            {"name": m["Name"], "regex": m["Regex"]} for m in estimator.metric_definitions or []
        ],
        "hyperparameters": static_hyperparameters(estimator),
        "environment": dict(estimator.environment or {}),
        "keep_alive_period_in_seconds": estimator.keep_alive_period_in_seconds or 0,
        **{k: getattr(estimator, k) for k in _COPIED if getattr(estimator, k) is not None},
        **extra,
    }
    if isinstance(getattr(estimator, "image_uri", None), str):
        raw["image_uri"] = estimator.image_uri
    return raw


def code_of(estimator: Any) -> tuple[Path, str]:
    """The local directory (or lone script) the Estimator's code is, and its entry point
    relative to it, as the SDK resolves them (relative paths from the working
    directory)."""
    entry = getattr(estimator, "entry_point", None)
    if not entry:
        raise ConfigError(
            "estimator: the Estimator has no entry_point; Sweeper runs script-mode jobs from"
            " an Estimator (give entry_point, and source_dir for a folder of code)"
        )
    if getattr(estimator, "dependencies", None):
        raise ConfigError(
            "estimator.dependencies: not supported; put the code those folders hold inside"
            " source_dir (requirements.txt there is installed by the training container)"
        )
    source = getattr(estimator, "source_dir", None)
    if source is None:
        return Path(entry).resolve(), Path(entry).name  # the SDK uploads the script alone
    if str(source).lower().startswith("s3://"):
        raise ConfigError(
            f"estimator.source_dir: {source} is on S3; give the local folder, which Sweeper"
            " packs and uploads once per change of its content"
        )
    return Path(source).resolve(), str(entry)


def static_hyperparameters(estimator: Any) -> dict[str, Any]:
    """The Estimator's own hyperparameters, as values (a framework estimator keeps them
    JSON-encoded)."""
    encoded = dict(estimator.hyperparameters() or {})
    if not is_framework(estimator):
        return encoded
    found: dict[str, Any] = {}
    for key, value in encoded.items():
        if str(key).startswith("sagemaker_"):
            continue  # script mode's own, set again when the request is built
        try:
            found[str(key)] = json.loads(value)
        except (TypeError, ValueError):
            found[str(key)] = value
    return found


def is_framework(estimator: Any) -> bool:
    """A framework (script-mode) estimator: JSON-encodes each hyperparameter."""
    from sagemaker.estimator import Framework

    return isinstance(estimator, Framework)


def check_conflicts(static: Mapping[str, Any], space: Any) -> None:
    """A hyperparameter both set on the Estimator and sampled by the space is refused."""
    for param in space:
        if param.name in static:
            raise ConfigError(
                f"space.{param.name}: the Estimator already sets hyperparameter"
                f" {param.name}={static[param.name]!r}; remove it from the Estimator's"
                " hyperparameters or from the space"
            )


def require_role(estimator: Any) -> None:
    """SageMaker runs a job as the Estimator's role: one must be given."""
    if not estimator.role:
        raise ConfigError(
            "estimator.role: the Estimator has no role; backend.kind sagemaker needs the ARN"
            " of an IAM role SageMaker can assume (Estimator(role=...); in SageMaker Studio,"
            " sagemaker.get_execution_role())"
        )
