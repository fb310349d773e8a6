"""DescribeTrainingJob as the SDKs read it (AWS's defaults filled in), tags, and a stop
that shows at once: ``Estimator.attach`` works unmodified against a standalone emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import (
    PROBE,
    boto3_client,
    describe_until,
    emulator_info,
    job_request,
    s3_client,
    sdk_session,
    standalone_emulator,
)


def test_attach_tags_and_an_immediate_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text(PROBE)
    with standalone_emulator(tmp_path / "state") as url:
        s3_client(emulator_info(url)["s3_endpoint_url"]).create_bucket(Bucket="bucket")
        sm = boto3_client(url)
        request = job_request("attach-1", code, Tags=[{"Key": "team", "Value": "ml"}])
        arn = sm.create_training_job(**request)["TrainingJobArn"]
        done = describe_until(sm, "attach-1", lambda j: j["TrainingJobStatus"] != "InProgress")
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "stage", "Value": "dev"}])
        sm.delete_tags(ResourceArn=arn, TagKeys=["team"])
        tags = sm.list_tags(ResourceArn=arn)["Tags"]

        from sagemaker.estimator import Estimator

        attached = Estimator.attach("attach-1", sagemaker_session=sdk_session(url))

        sm.create_training_job(**job_request("stop-1", code, "hang"))
        describe_until(sm, "stop-1", lambda j: j["SecondaryStatus"] == "Training")
        sm.stop_training_job(TrainingJobName="stop-1")
        right_after = sm.describe_training_job(TrainingJobName="stop-1")
        stopped = describe_until(sm, "stop-1", lambda j: j["TrainingJobStatus"] != "Stopping")
    assert done["TrainingJobStatus"] == "Completed"
    assert done["OutputDataConfig"]["KmsKeyId"] == ""
    assert done["EnableNetworkIsolation"] is False
    assert done["EnableManagedSpotTraining"] is False
    assert tags == [{"Key": "stage", "Value": "dev"}]
    assert attached.latest_training_job.name == "attach-1"
    assert attached.instance_type == "ml.m5.large"
    assert attached.tags == [{"Key": "stage", "Value": "dev"}]
    assert (right_after["TrainingJobStatus"], right_after["SecondaryStatus"]) == (
        "Stopping",
        "Stopping",
    )
    assert (stopped["TrainingJobStatus"], stopped["SecondaryStatus"]) == ("Stopped", "Stopped")
    statuses = [t["Status"] for t in stopped["SecondaryStatusTransitions"]]
    assert statuses[-2:] == ["Stopping", "Stopped"] and statuses.count("Stopping") == 1
