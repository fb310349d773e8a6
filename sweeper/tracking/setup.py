"""The sweep's run recorders, as the space file's ``tracking:`` asks: SageMaker
Experiments runs (unless ``experiments: false``) and MLflow runs (when ``mlflow:`` is
given), each with what earlier runs of the sweep left unrecorded queued."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, Protocol

from sweeper.aws.experiments import ExperimentsApi
from sweeper.aws.retry import RetryPolicy
from sweeper.config import BackendKind, SweepConfig
from sweeper.errors import ConfigError
from sweeper.recording import Observer, RequestHook
from sweeper.study import SweepStudy
from sweeper.tracking.experiments import Tracker
from sweeper.tracking.mlflow import MlflowTracker
from sweeper.tracking.mlflow_worker import MlflowCalls, MlflowWorker
from sweeper.tracking.series import JobSeries


class Recorder(RequestHook, Observer, Protocol):
    """A request hook and observer that completes runs on a task of its own."""

    async def drain(self) -> None:
        """Complete queued runs until :meth:`close`."""

    def close(self) -> None:
        """No more trials: :meth:`drain` returns once its queue is done."""

    def summary(self) -> str:
        """Where the runs are, for the sweep's last lines."""

    async def finish(self, interrupted: bool) -> None:
        """The sweep is over (or interrupted): end what stands for it."""


def require_mlflow(config: SweepConfig) -> None:
    """Refuse at start, not at the first trial, MLflow tracking without MLflow installed."""
    mlflow = config.tracking.mlflow
    if mlflow is None:
        return
    needed = ["mlflow"] + (["sagemaker_mlflow"] if mlflow.arn else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"{config.path}: tracking.mlflow needs {' and '.join(missing)}: "
            "pip install 'sweeper[mlflow]'"
        )


def start_mlflow(config: SweepConfig) -> MlflowCalls | None:
    """MLflow's client, starting in a process of its own (it takes seconds, and nothing
    waits for it but the MLflow tracker); None when ``tracking.mlflow`` is not given.
    The caller closes it."""
    mlflow = config.tracking.mlflow
    if mlflow is None:
        return None
    return MlflowWorker(mlflow.tracking_uri, mlflow.experiment)


async def recorders(
    config: SweepConfig,
    study: SweepStudy,
    series: JobSeries,
    output_path: str,
    note: Callable[[str], None],
    clients: tuple[Any, Any],
    mlflow: MlflowCalls | None,
    region: str,
    say: Callable[[str], None],
) -> list[Recorder]:
    """The recorders ``tracking:`` asks for, the Experiments catch-up queued (MLflow's is
    its tracker's first step); ``clients`` are the sagemaker and sagemaker-metrics
    clients; ``say`` is told what start-up does about earlier runs."""
    output = output_path.rstrip("/")

    def model_uri(job: str) -> str:
        return f"{output}/{job}/output/model.tar.gz"

    found: list[Recorder] = []
    if config.tracking.experiments:
        # Short retries: a throttled Experiments API must not hold up dispatching.
        api = ExperimentsApi(*clients, RetryPolicy(attempts=3, initial=0.5, maximum=4.0))
        tracker = Tracker(api, series, study, config, model_uri, note)
        queued = await tracker.catch_up()
        if queued:
            say(f"Experiments: completing {queued} runs an earlier run left unrecorded")
        found.append(tracker)
    if mlflow is not None:
        link = _console_link(config, region)
        found.append(MlflowTracker(mlflow, config, study, series, note, link, model_uri))
    return found


def _console_link(config: SweepConfig, region: str) -> Callable[[str], str | None]:
    """A job's page in the SageMaker console (none for the emulator's jobs)."""

    def link(job: str) -> str | None:
        if config.backend.kind == BackendKind.EMULATOR:
            return None
        return f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/jobs/{job}"

    return link
