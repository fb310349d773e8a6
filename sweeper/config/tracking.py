"""The ``tracking:`` section: SageMaker Experiments runs (on unless turned off) and MLflow
runs (off unless ``mlflow:`` is given; ``mlflow: {}`` is a SQLite file under ``.sweeps/``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sweeper.config import fields
from sweeper.config.model import Mlflow, Tracking
from sweeper.errors import ConfigError

# CreateTrainingJob's MlflowConfig.MlflowResourceArn (a tracking server or an MLflow app).
_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:mlflow-[a-zA-Z-]*/.*$")
_SCHEMES = ("sqlite:", "file:", "http:", "https:", "postgresql", "mysql", "mssql", "databricks")


def parse_tracking(raw: dict[str, Any], space_dir: Path, default_experiment: str) -> Tracking:
    """Validate ``tracking:``; relative tracking paths resolve against the space file."""
    sec = fields.mapping(raw, "tracking", {"experiments", "mlflow"})
    experiments = fields.get(sec, "experiments", "tracking", bool, True)
    mlflow_raw = sec.get("mlflow")
    if mlflow_raw is None:
        return Tracking(experiments=experiments)
    mlflow = fields.mapping(mlflow_raw, "tracking.mlflow", {"tracking_uri", "experiment"})
    default_uri = f"sqlite:///{space_dir.resolve() / '.sweeps' / 'mlflow.db'}"
    uri = fields.get(mlflow, "tracking_uri", "tracking.mlflow", str, default_uri)
    experiment = fields.get(mlflow, "experiment", "tracking.mlflow", str, default_experiment)
    if not 1 <= len(experiment) <= 256:
        raise ConfigError("tracking.mlflow.experiment: must be 1 to 256 characters")
    return Tracking(experiments, Mlflow(_tracking_uri(uri, space_dir), experiment))


def _tracking_uri(uri: str, space_dir: Path) -> str:
    where = "tracking.mlflow.tracking_uri"
    if not uri or len(uri) > 2048 or any(ord(c) < 32 for c in uri):
        raise ConfigError(f"{where}: must be 1 to 2048 printable characters")
    if uri.startswith("arn:"):
        if not _ARN.match(uri):
            raise ConfigError(
                f"{where}: {fields.shown(uri)} is not a SageMaker MLflow ARN"
                " (arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>"
                " or :mlflow-app/<id>)"
            )
        return uri
    if uri.lower().startswith(_SCHEMES):
        return uri
    if "://" in uri:
        raise ConfigError(
            f"{where}: unknown scheme in {fields.shown(uri)} (sqlite:///, file://, http(s)://,"
            " a database URL, a directory or a SageMaker MLflow ARN)"
        )
    return str((space_dir / uri).resolve())  # a directory: MLflow's file store


def arn_stand_in(text: str, cwd: Path) -> tuple[str, str]:
    """``sweep.py emulator --mlflow ARN=URI``: the SageMaker MLflow ARN and the local
    tracking URI that stands for it (a relative directory resolves against ``cwd``)."""
    arn, sep, uri = text.partition("=")
    where = "--mlflow"
    if not sep or not _ARN.match(arn):
        raise ConfigError(
            f"{where}: {fields.shown(text)} is not ARN=TRACKING_URI, with a SageMaker MLflow ARN"
            " (arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>)"
        )
    if uri.startswith("arn:"):
        raise ConfigError(f"{where}: an ARN stands for a local tracking URI, not another ARN")
    try:
        return arn, _tracking_uri(uri, cwd)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("tracking.mlflow.tracking_uri", where)) from None
