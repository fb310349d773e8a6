"""From a space file to what every job of a sweep shares, and what must be uploaded first.

Defaults a real account needs are resolved the way the SageMaker SDK resolves them:
the region from the AWS configuration chain, the default bucket
``sagemaker-<region>-<account>`` (created if missing), image URIs from the SDK's own
lookup tables. Nothing here reads or writes credentials.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session

from sweeper.aws.code import Upload, code_upload, input_upload
from sweeper.aws.retry import RetryPolicy
from sweeper.aws.s3 import S3, account_id, default_bucket, join, split
from sweeper.aws.training import JobTemplate
from sweeper.config import BackendKind, Estimator, SweepConfig
from sweeper.errors import ConfigError

EMULATOR_ACCOUNT = "123456789012"
EMULATOR_CREDENTIALS = ("test", "test")
EMULATOR_ROLE = f"arn:aws:iam::{EMULATOR_ACCOUNT}:role/SweeperEmulatorRole"
EMULATOR_IMAGE = "sweeper-emulator/local-python:latest"
ACCOUNT_PLACEHOLDER = "<account-id>"  # what --dry-run shows when it may not ask STS


@dataclass(frozen=True, slots=True)
class Plan:
    """The job template and the uploads it refers to (done before any job starts)."""

    template: JobTemplate
    uploads: tuple[Upload, ...]


def region(config: SweepConfig) -> str:
    """``backend.region``, else the AWS configuration (``AWS_REGION``,
    ``AWS_DEFAULT_REGION``, the profile's ``region``); the emulator falls back to
    us-east-1, SageMaker has no fallback."""
    found = (
        config.backend.region
        or os.environ.get("AWS_REGION")
        or botocore.session.get_session().get_config_variable("region")
    )
    if found:
        return str(found)
    if config.backend.kind == BackendKind.EMULATOR:
        return "us-east-1"
    raise ConfigError(
        "backend.region: no AWS region configured; set backend.region in the space file,"
        " or AWS_REGION, or run `aws configure set region us-east-1`"
    )


def role(config: SweepConfig) -> str:
    est = config.estimator
    if est.role:
        return est.role
    if config.backend.kind == BackendKind.EMULATOR:
        return EMULATOR_ROLE
    raise ConfigError(
        "estimator.role: required for backend.kind sagemaker: the ARN of an IAM role SageMaker"
        " can assume to run jobs. In SageMaker Studio it is the execution role (Domain"
        " settings); otherwise list candidates with"
        " `aws iam list-roles --query \"Roles[?contains(RoleName,'SageMaker')].Arn\"`"
    )


def image(config: SweepConfig, where: str) -> str:
    """``image_uri``; or the SDK's image for ``framework`` in ``where`` (a region)."""
    est = config.estimator
    if est.image_uri:
        return est.image_uri
    if est.framework:
        return _lookup_image(est, where)
    if config.backend.kind == BackendKind.EMULATOR:
        return EMULATOR_IMAGE
    raise ConfigError(
        "estimator.image_uri: required for backend.kind sagemaker; give image_uri, or"
        ' framework + framework_version (e.g. framework: sklearn, framework_version: "1.2-1")'
    )


def _lookup_image(est: Estimator, where: str) -> str:
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")  # a lookup is no migration
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)  # "Not applying defaults"
    excepthook = sys.excepthook  # some SDK releases install rich's traceback printer
    try:  # ~2 s and many modules: only when a framework is named
        from sagemaker.core import image_uris  # SDK v3 (sagemaker-core)
    except ImportError:
        try:
            from sagemaker import image_uris  # SDK v2, if that is what is installed
        except ImportError as exc:
            raise ConfigError(
                "estimator.framework: resolving its image URI needs the SageMaker SDK:"
                " pip install 'sweeper[sagemaker]' (or set estimator.image_uri)"
            ) from exc
    finally:
        sys.excepthook = excepthook
    try:
        uri = image_uris.retrieve(
            framework=est.framework,
            region=where,
            version=est.framework_version,
            py_version=est.py_version,
            instance_type=est.instance_type,
            image_scope="training",
        )
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"estimator.framework: {exc}") from exc
    return str(uri)


def default_output_path(config: SweepConfig, where: str, account: str) -> str:
    """``output_path``, else ``s3://sagemaker-<region>-<account>/<name>/``."""
    return config.estimator.output_path or f"s3://{default_bucket(where, account)}/{config.name}/"


def plan(config: SweepConfig, where: str, output_path: str) -> Plan:
    """The template and uploads; computes digests but sends nothing.

    The sweep's own files live under ``<output_path>/<name>/``: ``source/`` (code),
    ``inputs/`` (local inputs, emulator only) and ``checkpoints/`` (spot default).
    """
    est = config.estimator
    prefix = join(output_path, config.name)
    code = code_upload(est.source_dir, prefix)
    uploads = [code]
    inputs: dict[str, str] = {}
    for channel, value in est.inputs.items():
        if value.startswith("s3://"):
            inputs[channel] = value
            continue
        if config.backend.kind == BackendKind.SAGEMAKER:
            raise ConfigError(
                f"estimator.inputs.{channel}: a local path ({value}) works with the emulator"
                " only; upload it (aws s3 sync) and give its s3:// URI"
            )
        item = input_upload(channel, Path(value), prefix)
        uploads.append(item)
        inputs[channel] = item.uri
    checkpoints = est.checkpoint_s3_uri
    resumes = est.use_spot_instances or config.pruner.options.get("mode") == "promotion"
    if checkpoints is None and resumes:  # so an interrupted or promoted job resumes
        checkpoints = join(prefix, "checkpoints")
    template = JobTemplate(
        estimator=est,
        role=role(config),
        image=image(config, where),
        output_path=output_path,
        code_uri=code.uri,
        region=where,
        inputs=inputs,
        checkpoint_base=checkpoints,
    )
    return Plan(template, tuple(uploads))


async def resolve_output_path(
    config: SweepConfig, where: str, s3: S3, sts: Any, retry: RetryPolicy
) -> str:
    """The output path; the SDK's default bucket is created if it is the one used.

    The emulator's S3 starts empty, so there every bucket the sweep writes to is made.
    """
    est = config.estimator
    output_path = est.output_path or default_output_path(
        config, where, await account_id(sts, retry)
    )
    buckets = {split(output_path)[0]}
    if config.backend.kind == BackendKind.SAGEMAKER:
        if est.output_path:
            return output_path  # the user's own bucket: never created for them
    elif est.checkpoint_s3_uri:
        buckets.add(split(est.checkpoint_s3_uri)[0])
    for bucket in sorted(buckets):
        await s3.ensure_bucket(bucket, where)
    return output_path
