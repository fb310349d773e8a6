"""An SDK v2 Estimator's own CreateTrainingJob request, built once, then one per trial.

At start-up Sweeper packs and uploads the Estimator's code (content-addressed, as for a
space file) and its local inputs, then lets the SDK build the request exactly as
``fit(wait=False)`` does, on a copy of the Estimator whose SageMaker client only keeps
the request: nothing is sent, the user's Estimator is left as it was. Each trial's
request is that one with its job name, its hyperparameters (encoded as the Estimator
encodes them) and its own checkpoint prefix.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.api import estimators
from sweeper.aws import code, names, template
from sweeper.aws.retry import RetryPolicy
from sweeper.aws.s3 import S3, join
from sweeper.aws.training import JobOptions
from sweeper.config import BackendKind, SweepConfig
from sweeper.errors import ConfigError, SweepError
from sweeper.templates import Ready, output_path

if TYPE_CHECKING:
    from sweeper.backend import Endpoints

NO_TELEMETRY = {"Modules": {"TelemetryOptOut": True}}  # the SDK phones home otherwise


@dataclass(frozen=True, slots=True)
class SdkTemplate:
    """The SDK's request for a stand-in job, and how to make a trial's from it."""

    request: Mapping[str, Any]
    framework: bool  # hyperparameters JSON-encoded (script mode), else str()
    checkpoint_base: str | None

    def build(self, job_name: str, params: dict[str, Any], options: JobOptions) -> dict[str, Any]:
        """Trial ``params``'s request for ``job_name``: the SDK's, with the trial's name,
        hyperparameters and checkpoint prefix; spot and keep-alive dropped as
        ``options`` say."""
        request = copy.deepcopy(dict(self.request))
        request["TrainingJobName"] = job_name
        encode: Callable[[Any], str] = json.dumps if self.framework else str
        hps = request.setdefault("HyperParameters", {})
        hps.update({str(k): encode(v) for k, v in params.items()})
        if "sagemaker_job_name" in hps:
            hps["sagemaker_job_name"] = json.dumps(job_name)
        if self.checkpoint_base:
            uri = f"{self.checkpoint_base.rstrip('/')}/{options.checkpoint_key}"
            request["CheckpointConfig"] = {**request.get("CheckpointConfig", {}), "S3Uri": uri}
        if options.on_demand:
            request.pop("EnableManagedSpotTraining", None)
            request["StoppingCondition"].pop("MaxWaitTimeInSeconds", None)
        if not options.warm_pool:
            request["ResourceConfig"].pop("KeepAlivePeriodInSeconds", None)
        return request


class SdkJobs:
    """A :class:`~sweeper.templates.JobSource` for an SDK v2 Estimator and ``fit``'s
    ``inputs`` (channel -> S3 URI, local path (the emulator only) or TrainingInput)."""

    def __init__(self, estimator: Any, inputs: Mapping[str, Any] | None = None) -> None:
        self.estimator = estimator
        self.inputs = dict(inputs or {})

    async def prepare(
        self,
        config: SweepConfig,
        ends: Endpoints,
        stack: AsyncExitStack,
        say: Callable[[str], None],
    ) -> Ready:
        s3 = S3(await ends.client(stack, "s3"), RetryPolicy())
        output = await output_path(config, ends, stack, s3)
        prefix = join(output, config.name)
        source, _ = estimators.code_of(self.estimator)
        uploaded = code.code_upload(source, prefix)
        await code.upload(uploaded, s3, say=say)
        inputs = {
            k: await self._input(config, k, v, prefix, s3, say) for k, v in self.inputs.items()
        }
        request = await asyncio.to_thread(
            capture, self.estimator, config, ends, output, uploaded.uri, inputs
        )
        checkpoints = request.get("CheckpointConfig", {}).get("S3Uri")
        if checkpoints is None and config.estimator.use_spot_instances:  # so a job resumes
            checkpoints = join(prefix, "checkpoints")
        tmpl = SdkTemplate(request, estimators.is_framework(self.estimator), checkpoints)
        return Ready(tmpl.build, output)

    async def _input(
        self, config: SweepConfig, channel: str, value: Any, prefix: str, s3: S3, say: Any
    ) -> Any:
        """A channel's input as ``fit`` takes it: a local path uploaded first."""
        if not isinstance(value, str) or value.startswith("s3://"):
            return value
        if config.backend.kind == BackendKind.SAGEMAKER:
            raise ConfigError(
                f"inputs.{channel}: a local path ({value}) works with the emulator only;"
                " upload it (aws s3 sync) and give its s3:// URI"
            )
        local = Path.cwd() / value.removeprefix("file://")  # as fit() reads it
        item = await asyncio.to_thread(code.input_upload, channel, local, prefix)
        await code.upload(item, s3, say=say)
        return item.uri


class _Capture:
    """The SageMaker client of the SDK session ``fit`` runs on: it keeps the
    CreateTrainingJob request and sends nothing."""

    def __init__(self) -> None:
        self.request: dict[str, Any] | None = None

    def create_training_job(self, **request: Any) -> dict[str, str]:
        self.request = request
        return {"TrainingJobArn": f"arn:aws:sagemaker:::training-job/{request['TrainingJobName']}"}


class Described:
    """The SageMaker client of an estimator attached on the sweep's own emulator, once
    that has stopped: it answers DescribeTrainingJob for the job from what the emulator
    said, and refuses the rest in a sentence."""

    def __init__(self, job: str, description: Mapping[str, Any]) -> None:
        self._job, self._description = job, copy.deepcopy(dict(description))

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        if TrainingJobName != self._job:
            self._refuse("describe_training_job")
        return copy.deepcopy(self._description)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        self._refuse(name)

    def _refuse(self, call: str) -> Any:
        raise SweepError(
            f"{call}: the sweep's own emulator stopped when best_estimator() returned; run"
            " the sweep on a standalone emulator (python sweep.py emulator) or SageMaker to"
            " use the estimator further"
        )


def capture(
    estimator: Any,
    config: SweepConfig,
    ends: Endpoints,
    output: str,
    code_uri: str,
    inputs: Mapping[str, Any],
) -> dict[str, Any]:
    """The request ``fit(inputs, wait=False)`` sends for a copy of ``estimator`` whose
    code is ``code_uri`` (already on S3) and output ``output`` (blocking: the SDK)."""
    captured = _Capture()
    session = sdk_session(ends, estimator, captured)
    clone = _copy_of(estimator, session)
    clone.output_path = output
    clone.source_dir = code_uri
    clone.entry_point = estimators.code_of(estimator)[1]
    _fill_role(clone, config)
    sdk_log = logging.getLogger("sagemaker")
    level = sdk_log.level
    sdk_log.setLevel(logging.WARNING)  # "Creating training-job with name: ..." is not so
    try:
        clone.fit(inputs=dict(inputs) or None, job_name=_stand_in(config), wait=False, logs=False)
    except Exception as exc:
        raise SweepError(
            f"estimator: the SageMaker SDK could not build its training request ({exc})"
        ) from exc
    finally:
        sdk_log.setLevel(level)
    if captured.request is None:
        raise SweepError(
            "estimator: this SageMaker SDK version built no CreateTrainingJob request"
            " offline; use sagemaker>=2.257,<3, or describe the job in a space file"
        )
    request = captured.request
    request.pop("ExperimentConfig", None)  # each trial gets its own run
    return request


def _copy_of(estimator: Any, session: Any) -> Any:
    """A copy of ``estimator`` on ``session`` that ``fit`` may change at will: each of its
    attributes copied deeply, but for what cannot be (clients, the SDK's apps, which
    ``fit`` does not change), shared."""
    clone = copy.copy(estimator)
    theirs = estimator.sagemaker_session
    for key, value in vars(estimator).items():
        if value is theirs:
            continue
        try:
            setattr(clone, key, copy.deepcopy(value, {id(theirs): session}))
        except Exception:  # a lock, a client: left shared
            continue
    clone.sagemaker_session = session
    return clone


def _fill_role(clone: Any, config: SweepConfig) -> None:
    """The emulator's role for an Estimator without one (SageMaker's is required)."""
    if config.backend.kind == BackendKind.SAGEMAKER:
        estimators.require_role(clone)
    elif not clone.role:
        clone.role = template.EMULATOR_ROLE


def _stand_in(config: SweepConfig) -> str:
    """The job name the template is built for: trial 0's first, replaced in each."""
    return names.job_name(config.name, 0, 1)


def sdk_session(ends: Endpoints, estimator: Any = None, client: Any = None) -> Any:
    """An SDK v2 session on the sweep's endpoints (telemetry off), with ``estimator``'s
    session's SDK defaults; ``client`` stands for its SageMaker client if given."""
    import boto3
    from sagemaker.session import Session

    boto = boto3.Session(region_name=ends.region)
    if ends.credentials is not None:  # the emulator's keys; AWS's come from the chain
        key, secret = ends.credentials
        boto = boto3.Session(key, secret, region_name=ends.region)
    theirs = getattr(getattr(estimator, "sagemaker_session", None), "sagemaker_config", None)
    settings = copy.deepcopy(theirs) if isinstance(theirs, dict) and theirs else {}
    settings.setdefault("SchemaVersion", "1.0")
    python_sdk = settings.setdefault("SageMaker", {}).setdefault("PythonSDK", {})
    python_sdk.setdefault("Modules", {}).update(NO_TELEMETRY["Modules"])
    session = Session(
        boto_session=boto,
        sagemaker_client=client or boto.client("sagemaker", endpoint_url=ends.sagemaker),
        sagemaker_metrics_client=boto.client("sagemaker-metrics", endpoint_url=ends.sagemaker),
        sagemaker_config=settings,
    )
    session.s3_client = boto.client("s3", endpoint_url=ends.s3)
    session.s3_resource = boto.resource("s3", endpoint_url=ends.s3)
    return session
