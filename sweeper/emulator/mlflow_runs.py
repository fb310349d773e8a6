"""What SageMaker does with a job's ``MlflowConfig``, against a local MLflow tracking URI
that the emulator is told stands for the ARN (``sweep.py emulator --mlflow ARN=URI``).

SageMaker resolves the config when the job is created: the experiment by name (made if
missing; MLflow's ``Default`` when none is named), the run by name in it (the newest
one, made if missing; the job's name when none is given). Describe answers the ids as
``MlflowDetails``, and the container gets ``MLFLOW_TRACKING_URI``,
``MLFLOW_EXPERIMENT_ID`` and ``MLFLOW_RUN_ID``, so ``mlflow.start_run()`` inside the job
logs to that run. An ARN the emulator was not told about is accepted (its shape is
checked with the request) and has no details, as an emulator cannot reach it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sweeper.emulator.errors import validation


@dataclass(frozen=True, slots=True)
class MlflowRun:
    """Where a job's MLflow run is: the local URI standing for its ARN, and the ids."""

    tracking_uri: str
    experiment_id: str
    run_id: str

    def details(self) -> dict[str, str]:
        """DescribeTrainingJob's ``MlflowDetails``."""
        return {"MlflowExperimentId": self.experiment_id, "MlflowRunId": self.run_id}

    def environment(self) -> dict[str, str]:
        """What the container gets: MLflow's own variables, pointing at the run."""
        return {
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_EXPERIMENT_ID": self.experiment_id,
            "MLFLOW_RUN_ID": self.run_id,
        }


def resolve(request: dict[str, Any], servers: Mapping[str, str]) -> MlflowRun | None:
    """The run job ``request``'s ``MlflowConfig`` names, found or made; None without one
    or for an ARN not in ``servers``. Synchronous (MLflow's client): run it in a thread."""
    config = request.get("MlflowConfig")
    if not config or config["MlflowResourceArn"] not in servers:
        return None
    uri = servers[config["MlflowResourceArn"]]
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise validation(
            "MlflowConfig: this emulator cannot reach MLflow (pip install 'sweeper[mlflow]')"
        ) from None
    client = MlflowClient(uri)
    name = config.get("MlflowExperimentName") or "Default"
    try:
        found = client.get_experiment_by_name(name)
        experiment = found.experiment_id if found else client.create_experiment(name)
        run_name = config.get("MlflowRunName") or request["TrainingJobName"]
        runs = client.search_runs(
            [experiment],
            filter_string=f"attributes.run_name = '{_quoted(run_name)}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        run = (
            runs[0].info.run_id
            if runs
            else client.create_run(experiment, run_name=run_name).info.run_id
        )
    except MlflowException as exc:
        raise validation(f"MlflowConfig: MLflow at the resource answered: {exc.message}") from None
    return MlflowRun(uri, str(experiment), str(run))


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
