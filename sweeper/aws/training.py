"""Training jobs: the CreateTrainingJob request, idempotent creation, batched polling.

The same code drives the emulator and SageMaker; only the client's endpoint differs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sweeper.aws.retry import RetryPolicy
from sweeper.config import Estimator
from sweeper.errors import BackendError
from sweeper.types import JobState, JobStatus

SEARCH_PAGE = 100  # Search's MaxResults ceiling
_FILTER_VALUE_MAX = 1024  # FilterValue's length limit
_MAX_FILTERS = 20  # Filters per SearchExpression


@dataclass(frozen=True, slots=True)
class JobTemplate:
    """What every job of a sweep shares, resolved once at start-up
    (:mod:`sweeper.aws.template`).

    ``code_uri`` is the uploaded ``sourcedir.tar.gz``; ``inputs`` maps channels to S3
    prefixes; each trial checkpoints under ``<checkpoint_base>/<trial key>`` if it is set.
    """

    estimator: Estimator
    role: str
    image: str
    output_path: str
    code_uri: str
    region: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    checkpoint_base: str | None = None


@dataclass(frozen=True, slots=True)
class JobOptions:
    """How one job of a trial departs from the template.

    ``checkpoint_key`` names the trial's checkpoint prefix (under the template's
    ``checkpoint_base``): the same for every attempt, so a retry or a fallback resumes
    from the last checkpoint any of them saved.
    """

    checkpoint_key: str
    on_demand: bool = False  # a spot sweep's fallback: this job runs on on-demand capacity
    warm_pool: bool = True  # False: no keep-alive (the warm-pool quota is spent)


def build_request(
    tmpl: JobTemplate, job_name: str, params: Mapping[str, Any], options: JobOptions
) -> dict[str, Any]:
    """The CreateTrainingJob request of one trial's job.

    Hyperparameters are encoded the way the SageMaker SDK's framework estimators do
    (every value JSON-encoded, ``sagemaker_*`` keys for script mode), so the training
    toolkit decodes them and passes ``--key value`` arguments. Sampled parameters
    override static ones of the same name.
    """
    est = tmpl.estimator
    spot = est.use_spot_instances and not options.on_demand
    hps = {**est.hyperparameters, **params}
    hyperparameters = {str(k): json.dumps(v) for k, v in hps.items()}
    hyperparameters.update(
        sagemaker_program=json.dumps(est.entry_point),
        sagemaker_submit_directory=json.dumps(tmpl.code_uri),
        sagemaker_container_log_level="20",
        sagemaker_job_name=json.dumps(job_name),
        sagemaker_region=json.dumps(tmpl.region),
    )
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": est.max_run}
    if spot:
        stopping["MaxWaitTimeInSeconds"] = est.max_wait or est.max_run
    resources: dict[str, Any] = {
        "InstanceType": est.instance_type,
        "InstanceCount": est.instance_count,
        "VolumeSizeInGB": est.volume_size,
    }
    if est.keep_alive_period_in_seconds and options.warm_pool:
        resources["KeepAlivePeriodInSeconds"] = est.keep_alive_period_in_seconds
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "RoleArn": tmpl.role,
        "AlgorithmSpecification": {
            "TrainingImage": tmpl.image,
            "TrainingInputMode": "File",
            "MetricDefinitions": [
                {"Name": m.name, "Regex": m.regex} for m in est.metric_definitions
            ],
        },
        "HyperParameters": hyperparameters,
        "OutputDataConfig": {"S3OutputPath": tmpl.output_path},
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
    }
    if tmpl.inputs:
        request["InputDataConfig"] = [
            {
                "ChannelName": channel,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for channel, uri in tmpl.inputs.items()
        ]
    if est.environment:
        request["Environment"] = dict(est.environment)
    if spot:
        request["EnableManagedSpotTraining"] = True
    if tmpl.checkpoint_base:
        uri = f"{tmpl.checkpoint_base.rstrip('/')}/{options.checkpoint_key}"
        request["CheckpointConfig"] = {"S3Uri": uri}
    return request


class JobBackend(Protocol):
    """What the scheduler needs from a training-job service."""

    async def create(self, request: dict[str, Any]) -> None: ...

    async def poll(self, names: Iterable[str]) -> dict[str, JobState]: ...

    async def stop(self, name: str) -> None: ...

    async def release_pool(self, name: str) -> None: ...


class TrainingJobs:
    """:class:`JobBackend` over a SageMaker client (aiobotocore), with retries.

    Task-safe: calls may run concurrently on one client.
    """

    def __init__(self, client: Any, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def create(self, request: dict[str, Any]) -> None:
        """Create the job. Idempotent: if a job of that name exists *and is this very job*,
        it is adopted.

        A retried create whose first attempt did reach SageMaker, or a resumed sweep,
        answers ResourceInUse; names are deterministic per trial attempt, so the job is
        ours if its hyperparameters are the ones we send. A job of that name with other
        hyperparameters belongs to an earlier sweep of the same name: refused.
        """
        try:
            await self._retry.call(lambda: self._client.create_training_job(**request))
        except BackendError as exc:
            if exc.code != "ResourceInUse":
                raise
            name = request["TrainingJobName"]
            existing = await self._retry.call(
                lambda: self._client.describe_training_job(TrainingJobName=name)
            )
            if existing.get("HyperParameters") != request.get("HyperParameters"):
                raise BackendError(
                    "ResourceInUse",
                    f"a training job named {name} already exists with other hyperparameters:"
                    " an earlier sweep of the same name made it; give this sweep another name",
                ) from exc

    async def poll(self, names: Iterable[str]) -> dict[str, JobState]:
        """The state of every named job, in as few Search calls as the API allows.

        One call per 100 jobs (Search's page size); jobs not yet visible are absent.
        """
        wanted = sorted(set(names))
        states: dict[str, JobState] = {}
        for start in range(0, len(wanted), SEARCH_PAGE):
            expression = _name_filter(wanted[start : start + SEARCH_PAGE])
            response = await self._retry.call(
                lambda e=expression: self._client.search(  # type: ignore[misc]
                    Resource="TrainingJob", SearchExpression=e, MaxResults=SEARCH_PAGE
                )
            )
            for result in response.get("Results", []):
                state = job_state(result["TrainingJob"])
                states[state.name] = state
        return states

    async def stop(self, name: str) -> None:
        """Ask SageMaker to stop a job; a job already finished is left as it is."""
        try:
            await self._retry.call(lambda: self._client.stop_training_job(TrainingJobName=name))
        except BackendError as exc:
            if "status" not in exc.message:  # "…rejected because the job is in status X"
                raise

    async def release_pool(self, name: str) -> None:
        """End the job's warm pool now (UpdateTrainingJob, KeepAlive 0); one that is no
        longer Available is left as it is."""
        config = {"KeepAlivePeriodInSeconds": 0}
        try:
            await self._retry.call(
                lambda: self._client.update_training_job(
                    TrainingJobName=name, ResourceConfig=config
                )
            )
        except BackendError as exc:
            if exc.code != "ValidationException":
                raise


def _name_filter(names: list[str]) -> dict[str, Any]:
    """A SearchExpression matching exactly ``names``: ``In`` filters ORed together."""
    filters: list[dict[str, str]] = []
    chunk: list[str] = []
    for name in names:
        if chunk and len(",".join([*chunk, name])) > _FILTER_VALUE_MAX:
            filters.append({"Name": "TrainingJobName", "Operator": "In", "Value": ",".join(chunk)})
            chunk = []
        chunk.append(name)
    if chunk:
        filters.append({"Name": "TrainingJobName", "Operator": "In", "Value": ",".join(chunk)})
    assert len(filters) <= _MAX_FILTERS  # 100 names of <= 63 characters fit in 7
    return {"Filters": filters, "Operator": "Or"}


def job_state(job: Mapping[str, Any]) -> JobState:
    """A DescribeTrainingJob / Search ``TrainingJob`` record as a :class:`JobState`."""
    return JobState(
        name=job["TrainingJobName"],
        status=JobStatus(job["TrainingJobStatus"]),
        secondary_status=job.get("SecondaryStatus", ""),
        failure_reason=job.get("FailureReason", ""),
        final_metrics={
            m["MetricName"]: float(m["Value"]) for m in job.get("FinalMetricDataList", [])
        },
        created=job.get("CreationTime"),
        ended=job.get("TrainingEndTime"),
        training_seconds=job.get("TrainingTimeInSeconds"),
        billable_seconds=job.get("BillableTimeInSeconds"),
        warm_pool=(job.get("WarmPoolStatus") or {}).get("Status"),
        pool_seconds=(job.get("WarmPoolStatus") or {}).get("ResourceRetainedBillableTimeInSeconds"),
    )
