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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.emulator import opt_ml
from sweeper.emulator.errors import validation

# Host variables a local process needs to run at all; nothing else leaks in.
_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")


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
    """A process ready to start: argument list (never a shell string), env, cwd, and
    the command as the job asked for it (what a failure reason quotes)."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    command: list[str]


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


def reset(layout: Layout) -> None:
    """Give the job a fresh, empty tree (blocking). A tree left by an earlier emulator
    for the same job name is removed: every container run starts on a new instance."""
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


def submit_directory(job: dict[str, Any]) -> str:
    """Where the job's code is (``sagemaker_submit_directory``), or ``""``."""
    _, framework = decode_hyperparameters(job.get("HyperParameters", {}))
    return str(framework.get("sagemaker_submit_directory") or "")


def prepare(job: dict[str, Any], arn: str, layout: Layout, region: str) -> Launch:
    """Write the config files of ``job`` (a CreateTrainingJob request, ARN ``arn``) into
    its tree, whose code and data are already in place; return its launch (blocking).

    A job with a ``ContainerEntrypoint`` runs that command (with its
    ``ContainerArguments``) where ``/opt/ml`` is its tree (:mod:`.opt_ml`); any other
    job is a script-mode one, run as the training toolkit runs ``sagemaker_program``."""
    user, framework = decode_hyperparameters(job.get("HyperParameters", {}))
    spec = job["AlgorithmSpecification"]
    program = framework.get("sagemaker_program")
    if not program and not spec.get("ContainerEntrypoint"):
        raise validation(
            "The emulator runs script-mode jobs (hyperparameter sagemaker_program) and jobs"
            " with a ContainerEntrypoint; this job has neither"
        )
    channels = _channels(job)
    resource = _resource_config(job)
    (layout.config / "hyperparameters.json").write_text(json.dumps(job.get("HyperParameters", {})))
    (layout.config / "inputdataconfig.json").write_text(json.dumps(channels))
    (layout.config / "resourceconfig.json").write_text(json.dumps(resource))
    if spec.get("ContainerEntrypoint"):
        return _entrypoint_launch(job, arn, layout, region)
    args = command_line_args(user)
    env = _environment(job, arn, layout, user, framework, channels, resource, args, region)
    script = str(program)
    return Launch([sys.executable, script, *args], env, layout.code, ["python", script, *args])


def _entrypoint_launch(job: dict[str, Any], arn: str, layout: Layout, region: str) -> Launch:
    """``ContainerEntrypoint`` + ``ContainerArguments`` as an argument list, run by
    :mod:`.opt_ml` with the job's tree at ``/opt/ml``. The platform's variables only (a
    container's toolkit, not SageMaker, sets ``SM_*``); this interpreter's directory
    first on the ``PATH``, standing in for the image's Python (from a virtual
    environment: its ``python3``, ``python`` and ``pip``)."""
    spec = job["AlgorithmSpecification"]
    command = [*spec["ContainerEntrypoint"], *spec.get("ContainerArguments", [])]
    staging = layout.root / "host-opt"  # where the host's /opt is seen from inside
    staging.mkdir(exist_ok=True)
    argv = [sys.executable, "-I", opt_ml.__file__, str(layout.ml), str(staging), "--", *command]
    env = {k: os.environ[k] for k in _PASSTHROUGH if k in os.environ}
    env["PATH"] = os.pathsep.join(
        p for p in (str(Path(sys.executable).parent), env.get("PATH", os.defpath)) if p
    )
    env.update(_platform(job, arn, region))
    env.update(job.get("Environment", {}))
    return Launch(argv, env, layout.code, command)


def _channels(job: dict[str, Any]) -> dict[str, Any]:
    """``inputdataconfig.json``: each channel's mode and distribution."""
    channels: dict[str, Any] = {}
    for ch in job.get("InputDataConfig", []):
        source = ch["DataSource"].get("S3DataSource", {})
        channels[ch["ChannelName"]] = {
            "TrainingInputMode": ch.get(
                "InputMode", job["AlgorithmSpecification"].get("TrainingInputMode", "File")
            ),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
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
    env.update(_platform(job, arn, region), PYTHONPATH=str(layout.code))
    env.update(job.get("Environment", {}))
    return env


def _platform(job: dict[str, Any], arn: str, region: str) -> dict[str, str]:
    """What SageMaker sets in every training container, whatever its image."""
    return {
        "TRAINING_JOB_NAME": job["TrainingJobName"],
        "TRAINING_JOB_ARN": arn,
        "SAGEMAKER_JOB_NAME": job["TrainingJobName"],
        "SAGEMAKER_REGION": region,
        "CURRENT_HOST": "algo-1",
        "PYTHONUNBUFFERED": "1",
    }


def aws_environment(
    sagemaker: str, s3: str, region: str, credentials: tuple[str, str]
) -> dict[str, str]:
    """What a SageMaker container has for calling AWS, pointing back at the emulator: the
    emulator's own keys standing in for the role's credentials, the region, and an
    ``AWS_ENDPOINT_URL_<service>`` for each service it serves (botocore and the SDKs
    read them), so an unmodified ``load_run()`` or boto3 call inside a job reaches it."""
    key, secret = credentials
    return {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata to ask on this machine
        "AWS_ENDPOINT_URL_SAGEMAKER": sagemaker,
        "AWS_ENDPOINT_URL_SAGEMAKER_METRICS": sagemaker,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": sagemaker,
        "AWS_ENDPOINT_URL_CLOUDWATCH": sagemaker,
        "AWS_ENDPOINT_URL_S3": s3,
        "AWS_ENDPOINT_URL_STS": s3,
    }


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def failure_reason(layout: Layout, code: int, tail: list[str], command: list[str]) -> str:
    """A failed script's FailureReason: its failure file if it wrote one, else the
    training toolkit's message with the last lines of stderr."""
    if layout.failure_file.is_file():
        text = layout.failure_file.read_text(encoding="utf-8", errors="replace")
        return f"AlgorithmError: {text.strip()}"
    message = " ".join(tail[-5:])[-600:]
    return (
        f"AlgorithmError: ExecuteUserScriptError:\nExitCode {code}\n"
        f'ErrorMessage "{message}"\nCommand "{" ".join(command)}"'
    )
