"""An unmodified boto3 client against ``python sweep.py emulator --port N``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import boto3_client, emulator_info, s3_client, s3_tar_names, standalone_emulator

ROOT = Path(__file__).parents[2]


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with standalone_emulator(tmp_path / "state") as url:
        s3_client(emulator_info(url)["s3_endpoint_url"]).create_bucket(Bucket="bucket")
        yield url, tmp_path / "state"


def _client(url: str) -> Any:
    return boto3_client(url)


def _request(name: str, code: Path, seconds: float) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/Test",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "HyperParameters": {
            "seconds": str(seconds),
            "sagemaker_program": json.dumps("job.py"),
            "sagemaker_submit_directory": json.dumps(str(code)),
        },
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }


def _wait(client: Any, name: str, until: set[str], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in until:
            return job
        time.sleep(0.05)
    raise TimeoutError(f"{name} never reached {until}")


def test_boto3_can_create_describe_list_search_and_stop(
    standalone: tuple[str, Path], tmp_path: Path
) -> None:
    url, state = standalone
    code = tmp_path / "code"
    code.mkdir()
    (code / "job.py").write_text(
        "import sys, time\n"
        "print('started', flush=True)\n"
        "time.sleep(float(sys.argv[sys.argv.index('--seconds') + 1]))\n"
    )
    sm = _client(url)
    sm.create_training_job(**_request("quick-1", code, 0))
    sm.create_training_job(**_request("long-1", code, 300))
    quick = _wait(sm, "quick-1", {"Completed", "Failed"})
    assert quick["TrainingJobStatus"] == "Completed"
    s3 = s3_client(emulator_info(url)["s3_endpoint_url"])  # boto3 reaches the model on S3
    assert s3_tar_names(s3, quick["ModelArtifacts"]["S3ModelArtifacts"]) == []
    assert sm.describe_training_job(TrainingJobName="long-1")["TrainingJobStatus"] == "InProgress"

    names = [s["TrainingJobName"] for s in sm.list_training_jobs()["TrainingJobSummaries"]]
    assert names == ["quick-1", "long-1"]  # CreationTime, ascending by default
    running = sm.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in running] == ["long-1"]
    found = sm.search(
        Resource="TrainingJob",
        SearchExpression={
            "Filters": [{"Name": "TrainingJobStatus", "Operator": "Equals", "Value": "Completed"}]
        },
    )["Results"]
    assert [r["TrainingJob"]["TrainingJobName"] for r in found] == ["quick-1"]

    sm.stop_training_job(TrainingJobName="long-1")
    stopped = _wait(sm, "long-1", {"Stopped", "Failed", "Completed"})
    assert (stopped["TrainingJobStatus"], stopped["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert (state / "jobs" / "long-1" / "opt" / "ml" / "model").is_dir()


def test_boto3_gets_aws_errors(standalone: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = standalone
    sm = _client(url)
    (tmp_path / "job.py").write_text("print('hi')\n")
    with pytest.raises(ClientError) as bad:
        sm.create_training_job(**_request("-bad", tmp_path, 0))
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    assert "Value '-bad' at 'trainingJobName' failed to satisfy constraint" in str(bad.value)
    sm.create_training_job(**_request("twice-1", tmp_path, 0))
    with pytest.raises(sm.exceptions.ResourceInUse):
        sm.create_training_job(**_request("twice-1", tmp_path, 0))
    with pytest.raises(ClientError) as unknown:
        sm.describe_training_job(TrainingJobName="ghost-1")
    assert unknown.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Requested resource not found.",
    }
    with pytest.raises(sm.exceptions.ResourceNotFound) as unknown_stop:
        sm.stop_training_job(TrainingJobName="ghost-1")
    assert unknown_stop.value.response["Error"]["Message"] == "Requested resource not found."


def test_refuses_to_bind_beyond_loopback() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "sweep.py"), "emulator", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "loopback only" in result.stderr
