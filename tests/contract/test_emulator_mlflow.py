"""A job's ``MlflowConfig`` on a standalone emulator told which local tracking URI stands
for a SageMaker MLflow ARN (``sweep.py emulator --mlflow ARN=URI``): the run is found
or made at creation, Describe answers ``MlflowDetails``, and ``mlflow.start_run()``
inside the job logs to that run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import botocore.exceptions
import pytest

from tests.helpers import (
    boto3_client,
    describe_until,
    emulator_info,
    job_request,
    s3_client,
    standalone_emulator,
)

mlflow = pytest.importorskip("mlflow")

ARN = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/team"
ELSEWHERE = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-app/app-unknown"

LOGS_TO_ITS_RUN = textwrap.dedent(
    """
    import mlflow
    with mlflow.start_run() as run:  # MLFLOW_RUN_ID: the job's run, not a new one
        mlflow.log_metric("inside", 1.5)
    print("loss=0.5")
    """
)


def _mlflow(name: str, arn: str = ARN, **names: str) -> dict[str, dict[str, str]]:
    return {"MlflowConfig": {"MlflowResourceArn": arn, **names}}


def test_mlflow_config_names_a_run_that_the_job_logs_to(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text(LOGS_TO_ITS_RUN)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with standalone_emulator(tmp_path / "state", "--mlflow", f"{ARN}={uri}") as url:
        s3_client(emulator_info(url)["s3_endpoint_url"]).create_bucket(Bucket="bucket")
        sm = boto3_client(url)
        named = _mlflow("a", MlflowExperimentName="sweep-x", MlflowRunName="trial-0")
        sm.create_training_job(**job_request("mlflow-a", code, **named))
        finished = describe_until(sm, "mlflow-a", lambda j: j["TrainingJobStatus"] != "InProgress")
        again = _mlflow("b", MlflowExperimentName="sweep-x", MlflowRunName="trial-0")
        sm.create_training_job(**job_request("mlflow-b", code, **again))
        sm.create_training_job(**job_request("mlflow-c", code, **_mlflow("c")))
        sm.create_training_job(**job_request("mlflow-d", code, **_mlflow("d", ELSEWHERE)))
        bad_arn = "arn:aws:sagemaker:us-east-1:123456789012:notebook/x"
        with pytest.raises(botocore.exceptions.ClientError) as bad:
            sm.create_training_job(**job_request("mlflow-e", code, **_mlflow("e", bad_arn)))
        jobs = {
            name: describe_until(sm, name, lambda j: j["TrainingJobStatus"] != "InProgress")
            for name in ("mlflow-b", "mlflow-c")
        } | {"mlflow-a": finished}
        elsewhere = sm.describe_training_job(TrainingJobName="mlflow-d")
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    assert "at 'mlflowConfig.mlflowResourceArn'" in bad.value.response["Error"]["Message"]
    assert "MlflowDetails" not in elsewhere  # an ARN the emulator cannot reach: no run
    assert elsewhere["MlflowConfig"]["MlflowResourceArn"] == ELSEWHERE
    assert all(j["TrainingJobStatus"] == "Completed" for j in jobs.values()), jobs

    client = mlflow.tracking.MlflowClient(uri)
    details = {name: job["MlflowDetails"] for name, job in jobs.items()}
    sweep = client.get_experiment_by_name("sweep-x")
    assert details["mlflow-a"] == {
        "MlflowExperimentId": sweep.experiment_id,
        "MlflowRunId": details["mlflow-a"]["MlflowRunId"],
    }
    assert details["mlflow-b"] == details["mlflow-a"]  # the same run name: the same run
    run = client.get_run(details["mlflow-a"]["MlflowRunId"])
    assert run.info.run_name == "trial-0"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "inside")] == [1.5, 1.5]
    unnamed = client.get_run(details["mlflow-c"]["MlflowRunId"])
    default = client.get_experiment_by_name("Default")
    assert details["mlflow-c"]["MlflowExperimentId"] == default.experiment_id
    assert unnamed.info.run_name == "mlflow-c"  # no run name: the job's
    assert unnamed.data.metrics == {"inside": 1.5}
    assert len(client.search_runs([sweep.experiment_id])) == 1


def test_the_flag_is_refused_when_it_names_no_mlflow_arn(tmp_path: Path) -> None:
    from tests.helpers import run_sweep

    result = run_sweep("emulator", "--state", str(tmp_path), "--mlflow", "arn:aws:s3:::b=./x")
    assert result.returncode == 2
    assert "--mlflow: 'arn:aws:s3:::b=./x' is not ARN=TRACKING_URI" in result.stderr
