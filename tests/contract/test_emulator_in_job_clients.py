"""A training script may call AWS from inside its job, as on SageMaker: the job's process
has credentials, the region, endpoints pointing back at the emulator and its job's ARN,
so boto3 and the SageMaker SDK's ``load_run()`` work unmodified."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.helpers import (
    boto3_client,
    describe_until,
    emulator_info,
    job_request,
    s3_client,
    sdk_session,
    standalone_emulator,
)

# A train.py that calls AWS with nothing but what its container gives it.
IN_JOB = textwrap.dedent(
    """
    import os, boto3
    sm = boto3.client("sagemaker")
    me = sm.describe_training_job(TrainingJobName=os.environ["TRAINING_JOB_NAME"])
    assert me["TrainingJobArn"] == os.environ["TRAINING_JOB_ARN"]
    print("account=" + boto3.client("sts").get_caller_identity()["Account"])
    boto3.client("s3").put_object(Bucket="bucket", Key="from-the-job.txt", Body=b"hi")
    boto3.client("cloudwatch").list_metrics(Namespace="/aws/sagemaker/TrainingJobs")
    from sagemaker.experiments.run import load_run
    with load_run() as run:  # the trial's run, found from the job's ExperimentConfig
        run.log_parameter("written_by", "the job")
        for step in range(3):
            run.log_metric(name="inner_loss", value=1.0 / (step + 1), step=step)
    print("loss=0.25")
    """
)


def test_boto3_and_load_run_work_inside_a_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text(IN_JOB)
    with standalone_emulator(tmp_path / "state") as url:
        s3_url = emulator_info(url)["s3_endpoint_url"]
        s3_client(s3_url).create_bucket(Bucket="bucket")
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", s3_url)
        from sagemaker.experiments.run import Run

        session = sdk_session(url)
        with Run(experiment_name="inner", run_name="run-1", sagemaker_session=session):
            pass  # the run exists before its job, as a sweep makes it
        request = job_request("inner-1", code)
        request["ExperimentConfig"] = {
            "ExperimentName": "inner",
            "TrialName": "Default-Run-Group-inner",
            "RunName": "inner-run-1",
        }
        sm = boto3_client(url)
        sm.create_training_job(**request)
        job = describe_until(sm, "inner-1", timeout=120)
        run = sm.describe_trial_component(TrialComponentName="inner-run-1")
        put = s3_client(s3_url).get_object(Bucket="bucket", Key="from-the-job.txt")
        assert put["Body"].read() == b"hi"
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert run["Parameters"]["written_by"] == {"StringValue": "the job"}
    inner = {m["MetricName"]: m for m in run["Metrics"]}["inner_loss"]
    assert (inner["Count"], inner["Min"], inner["Last"]) == (3, 1.0 / 3, 1.0 / 3)
