"""SageMaker Experiments calls, named the way the SageMaker SDK's ``Run`` names things.

An SDK Run called ``<run>`` in experiment ``<exp>`` (both lowercase) is the trial
component ``<exp>-<run>`` tagged ``sagemaker:trial-component-source=run``, associated
with the run group trial ``Default-Run-Group-<exp>``; jobs launched in it carry
``ExperimentConfig {ExperimentName, TrialName: run group, RunName: component}``. So
``sagemaker.experiments.list_runs`` / ``load_run`` and Studio recognise Sweeper's runs.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sweeper.aws.retry import RetryPolicy
from sweeper.errors import BackendError
from sweeper.types import Point

RUN_TAG = {"Key": "sagemaker:trial-component-source", "Value": "run"}
_PART_MAX = 59  # the SDK refuses longer experiment or run names in a component name
_INVALID = re.compile(r"[^a-z0-9-]+")
METRICS_PER_CALL = 10  # BatchPutMetrics' limit


def experiment_name(base: str, shard: int) -> str:
    """Shard 0 is ``<base>``, shard k is ``<base>-<k+1>``; lowercase, valid, <= 59 chars."""
    clean = _INVALID.sub("-", base.lower()).strip("-") or "sweep"
    suffix = f"-{shard + 1}" if shard else ""
    if len(clean) + len(suffix) > _PART_MAX:
        digest = hashlib.sha256(base.encode()).hexdigest()[:6]
        clean = f"{clean[: _PART_MAX - len(suffix) - 7].rstrip('-')}-{digest}"
    return clean + suffix


def run_group(experiment: str) -> str:
    return f"Default-Run-Group-{experiment[:100]}"


def component_name(experiment: str, run: str) -> str:
    return f"{experiment}-{run}"


def experiment_config(experiment: str, run: str) -> dict[str, str]:
    """The job request's ``ExperimentConfig`` for a job of this run."""
    return {
        "ExperimentName": experiment,
        "TrialName": run_group(experiment),
        "RunName": component_name(experiment, run),
    }


def parameters(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Trial-component parameters: numbers as NumberValue, the rest as StringValue;
    NaN and infinities are dropped, as the SDK drops them."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                out[key] = {"NumberValue": float(value)}
        else:
            out[key] = {"StringValue": str(value)[:2500]}
    return out


def _exists(exc: BackendError) -> bool:
    return exc.code == "ValidationException" and "already exists" in exc.message


class ExperimentsApi:
    """Idempotent Experiments operations over the SageMaker and sagemaker-metrics
    clients. Task-safe."""

    def __init__(self, sagemaker: Any, metrics: Any, retry: RetryPolicy) -> None:
        self._sm = sagemaker
        self._metrics = metrics
        self._retry = retry

    async def ensure_experiment(self, name: str, description: str) -> None:
        try:
            await self._retry.call(
                lambda: self._sm.create_experiment(ExperimentName=name, Description=description)
            )
        except BackendError as exc:
            if not _exists(exc):
                raise

    async def ensure_run_group(self, experiment: str) -> None:
        try:
            await self._retry.call(
                lambda: self._sm.create_trial(
                    TrialName=run_group(experiment), ExperimentName=experiment
                )
            )
        except BackendError as exc:
            if not _exists(exc):
                raise

    async def create_run(self, component: str, run: str, params: dict[str, Any]) -> None:
        """Create the run's component (kept if it exists: a resumed sweep)."""
        try:
            await self._retry.call(
                lambda: self._sm.create_trial_component(
                    TrialComponentName=component,
                    DisplayName=run,
                    Status={"PrimaryStatus": "InProgress", "Message": "Within a run context"},
                    Parameters=params,
                    Tags=[RUN_TAG],
                )
            )
        except BackendError as exc:
            if not _exists(exc):
                raise

    async def associate(self, component: str, experiment: str) -> None:
        """Put the run in its experiment's run group; ResourceLimitExceeded (a
        :class:`~sweeper.errors.CapacityError`) when the group is full."""
        await self._retry.call(
            lambda: self._sm.associate_trial_component(
                TrialComponentName=component, TrialName=run_group(experiment)
            )
        )

    async def delete_run(self, component: str) -> None:
        try:
            await self._retry.call(
                lambda: self._sm.delete_trial_component(TrialComponentName=component)
            )
        except BackendError as exc:
            if exc.code not in ("ResourceNotFound", "ValidationException"):
                raise

    async def update_run(self, component: str, **fields: Any) -> None:
        await self._retry.call(
            lambda: self._sm.update_trial_component(TrialComponentName=component, **fields)
        )

    async def put_metrics(self, component: str, series: Sequence[Point]) -> None:
        """A metric series, ten points per call. The component name must
        be lowercase (sagemaker-metrics' pattern), as SDK run names are."""
        for start in range(0, len(series), METRICS_PER_CALL):
            data = [
                {"MetricName": p.metric, "Timestamp": p.time, "Step": p.step, "Value": p.value}
                for p in series[start : start + METRICS_PER_CALL]
            ]
            response = await self._retry.call(
                lambda d=data: self._metrics.batch_put_metrics(  # type: ignore[misc]
                    TrialComponentName=component, MetricData=d
                )
            )
            if response.get("Errors"):
                raise BackendError("BatchPutMetrics", str(response["Errors"][:3]))
