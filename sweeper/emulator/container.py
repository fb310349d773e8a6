"""The SageMaker training-container contract, laid out for a local process.

Each job gets its own ``opt/ml`` tree under the emulator's state directory; paths in
``SM_*`` variables point there instead of ``/opt/ml``. What the SageMaker training
toolkit does inside the container is mirrored here: hyperparameters are JSON-decoded,
``sagemaker_*`` keys become framework parameters, the rest become ``--key value``
arguments sorted by key, and the script runs with the code directory as its working
directory.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.emulator.errors import validation

# Host variables a local process needs to run at all; nothing else leaks in.
_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")
_IGNORE = shutil.ignore_patterns(".sweeps", "__pycache__", ".git", ".venv", "*.pyc")


@dataclass(frozen=True, slots=True)
class Layout:
    """The ``/opt/ml`` paths of one job, rooted at ``root``."""

    root: Path

    @property
    def ml(self) -> Path:
        return self.root / "opt" / "ml"

    @property
    def config(self) -> Path:
        return self.ml / "input" / "config"

    @property
    def data(self) -> Path:
        return self.ml / "input" / "data"

    @property
    def model(self) -> Path:
        return self.ml / "model"

    @property
    def output(self) -> Path:
        return self.ml / "output"

    @property
    def code(self) -> Path:
        return self.ml / "code"

    @property
    def checkpoints(self) -> Path:
        return self.ml / "checkpoints"

    @property
    def failure_file(self) -> Path:
        return self.output / "failure"


@dataclass(frozen=True, slots=True)
class Launch:
    """A process ready to start: argument list (never a shell string), env, cwd."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


def decode_hyperparameters(raw: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split into (user hyperparameters, framework parameters), JSON-decoding values."""
    user: dict[str, Any] = {}
    framework: dict[str, Any] = {}
    for key, text in raw.items():
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        (framework if key.startswith("sagemaker_") else user)[key] = value
    return user, framework


def command_line_args(user: dict[str, Any]) -> list[str]:
    """``--key value`` pairs sorted by key (``-k value`` for one-letter keys), toolkit style."""
    args: list[str] = []
    for key in sorted(user):
        value = user[key]
        if isinstance(value, dict):
            text = ",".join(f"{k}={v}" for k, v in value.items())
        else:
            text = str(value)
        args += [f"-{key}" if len(key) == 1 else f"--{key}", text]
    return args


def prepare(job: dict[str, Any], arn: str, layout: Layout, s3_root: Path, region: str) -> Launch:
    """Lay out the tree for ``job`` (a CreateTrainingJob request, ARN ``arn``); return its launch.

    Blocking (copies files); call it off the event loop. A tree left by an earlier
    emulator for the same job name is replaced: every job starts on a fresh instance.
    """
    if layout.root.exists():
        shutil.rmtree(layout.root)
    for d in (
        layout.config,
        layout.data,
        layout.model,
        layout.output / "data",
        layout.output / "intermediate",
        layout.code,
        layout.checkpoints,
    ):
        d.mkdir(parents=True, exist_ok=True)
    user, framework = decode_hyperparameters(job.get("HyperParameters", {}))
    program = framework.get("sagemaker_program")
    if not program:
        raise validation(
            "The emulator runs script-mode jobs only: hyperparameter sagemaker_program is missing"
        )
    _fetch_code(str(framework.get("sagemaker_submit_directory", "")), layout.code, s3_root)
    channels = _channels(job, layout, s3_root)
    resource = _resource_config(job)
    (layout.config / "hyperparameters.json").write_text(json.dumps(job.get("HyperParameters", {})))
    (layout.config / "inputdataconfig.json").write_text(json.dumps(channels))
    (layout.config / "resourceconfig.json").write_text(json.dumps(resource))
    args = command_line_args(user)
    env = _environment(job, arn, layout, user, framework, channels, resource, args, region)
    return Launch([sys.executable, str(program), *args], env, layout.code)


def s3_path(uri: str, s3_root: Path) -> Path:
    """Where the emulator keeps ``s3://bucket/key`` on disk; refuses escapes."""
    if not uri.startswith("s3://"):
        raise validation(f"Not an S3 URI: {uri}")
    path = (s3_root / uri.removeprefix("s3://")).resolve()
    if not path.is_relative_to(s3_root.resolve()):
        raise validation(f"Invalid S3 URI: {uri}")
    return path


def _fetch_code(source: str, dest: Path, s3_root: Path) -> None:
    """Fill ``/opt/ml/code`` from the submit directory (local dir, local tar or s3://)."""
    if not source:
        return
    path = s3_path(source, s3_root) if source.startswith("s3://") else Path(source)
    if path.is_dir():
        shutil.copytree(path, dest, dirs_exist_ok=True, ignore=_IGNORE)
    elif path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            tar.extractall(dest, filter="data")
    else:
        raise validation(f"sagemaker_submit_directory {source!r} was not found")


def _channels(job: dict[str, Any], layout: Layout, s3_root: Path) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for ch in job.get("InputDataConfig", []):
        name = ch["ChannelName"]
        target = layout.data / name
        target.mkdir(parents=True, exist_ok=True)
        uri = ch["DataSource"].get("S3DataSource", {}).get("S3Uri", "")
        src = s3_path(uri, s3_root) if uri else None
        if src is not None and src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        elif src is not None and src.is_file():
            shutil.copy2(src, target / src.name)
        channels[name] = {
            "TrainingInputMode": ch.get(
                "InputMode", job["AlgorithmSpecification"].get("TrainingInputMode", "File")
            ),
            "S3DistributionType": ch["DataSource"]
            .get("S3DataSource", {})
            .get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": ch.get("RecordWrapperType", "None"),
        }
    return channels


def _resource_config(job: dict[str, Any]) -> dict[str, Any]:
    rc = job.get("ResourceConfig", {})
    instance_type = rc.get("InstanceType", "local")
    hosts = [f"algo-{i + 1}" for i in range(int(rc.get("InstanceCount", 1)))]
    return {
        "current_host": "algo-1",
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": hosts,
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": instance_type,
                "hosts": hosts,
            }
        ],
        "network_interface_name": "eth0",
    }


def _environment(
    job: dict[str, Any],
    arn: str,
    layout: Layout,
    user: dict[str, Any],
    framework: dict[str, Any],
    channels: dict[str, Any],
    resource: dict[str, Any],
    args: list[str],
    region: str,
) -> dict[str, str]:
    """The process environment: platform, toolkit ``SM_*`` and the job's Environment."""
    program = str(framework["sagemaker_program"])
    props: dict[str, Any] = {
        "model_dir": str(layout.model),
        "channels": sorted(channels),
        "hps": user,
        "output_data_dir": str(layout.output / "data"),
        "output_dir": str(layout.output),
        "output_intermediate_dir": str(layout.output / "intermediate"),
        "input_dir": str(layout.ml / "input"),
        "input_config_dir": str(layout.config),
        "num_gpus": 0,
        "num_cpus": os.cpu_count() or 1,
        "num_neurons": 0,
        "current_host": resource["current_host"],
        "hosts": resource["hosts"],
        "current_instance_type": resource["current_instance_type"],
        "network_interface_name": resource["network_interface_name"],
        "user_entry_point": program,
        "module_name": program.removesuffix(".py"),
        "module_dir": str(framework.get("sagemaker_submit_directory", layout.code)),
        "log_level": int(framework.get("sagemaker_container_log_level", 20)),
        "resource_config": resource,
        "input_data_config": channels,
        "user_args": args,
        "framework_params": {},
        "job_name": job["TrainingJobName"],
    }
    env = {k: os.environ[k] for k in _PASSTHROUGH if k in os.environ}
    for key, value in props.items():
        env[f"SM_{key.upper()}"] = value if isinstance(value, str) else _json(value)
    for name in channels:
        env[f"SM_CHANNEL_{name.upper()}"] = str(layout.data / name)
    for key, value in user.items():
        env[f"SM_HP_{key.upper()}"] = value if isinstance(value, str) else _json(value)
    env["SM_TRAINING_ENV"] = _json(
        {**props, "channel_input_dirs": {n: str(layout.data / n) for n in channels}}
    )
    env.update(
        TRAINING_JOB_NAME=job["TrainingJobName"],
        TRAINING_JOB_ARN=arn,
        SAGEMAKER_JOB_NAME=job["TrainingJobName"],
        SAGEMAKER_REGION=region,
        CURRENT_HOST="algo-1",
        PYTHONPATH=str(layout.code),
        PYTHONUNBUFFERED="1",
    )
    env.update(job.get("Environment", {}))
    return env


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
