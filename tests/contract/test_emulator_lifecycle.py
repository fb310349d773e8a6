"""The emulator through the real aiobotocore client over HTTP: lifecycles and errors."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sweeper.aws.clients import open_client
from sweeper.aws.retry import RetryPolicy
from sweeper.aws.training import TrainingJobs
from sweeper.emulator.embedded import EmbeddedEmulator
from sweeper.emulator.settings import EmulatorSettings, RunnerSettings
from sweeper.errors import BackendError
from sweeper.types import JobStatus
from tests.helpers import job_request, s3_tar_names, wait_for_job, wait_for_log


async def test_completed_job_follows_the_sagemaker_lifecycle(
    sagemaker: Any, emulator: EmbeddedEmulator, code_dir: Path, tmp_path: Path, s3: Any
) -> None:
    arn = (await sagemaker.create_training_job(**job_request("ok-1", code_dir)))["TrainingJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:training-job/ok-1"
    job = await wait_for_job(sagemaker, "ok-1")
    assert job["TrainingJobStatus"] == "Completed"
    assert job["SecondaryStatus"] == "Completed"
    steps = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert steps == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert all("EndTime" in t for t in job["SecondaryStatusTransitions"])
    assert [(m["MetricName"], m["Value"]) for m in job["FinalMetricDataList"]] == [
        ("loss", pytest.approx(1 / 3, abs=1e-4))
    ]
    assert job["TrainingStartTime"] >= job["CreationTime"]
    assert job["TrainingEndTime"] >= job["TrainingStartTime"]
    assert job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"] >= 1
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == "s3://bucket/out/ok-1/output/model.tar.gz"
    assert s3_tar_names(s3, artifact) == ["weights.txt"]
    # The container contract: toolkit-style argv, hyperparameters.json, SM_* environment.
    log = emulator.emulator.logs.text("ok-1")
    argv = json.loads(log.split("ARGV ", 1)[1].splitlines()[0])
    assert argv == [
        "--a_long",
        "x",
        "-b",
        "2",
        "--mode",
        "ok",
        "-z",
        "1.5",
    ]  # toolkit: -k for 1-char keys
    env = json.loads(log.split("ENV ", 1)[1].splitlines()[0])
    assert json.loads(env["SM_HPS"]) == {"a_long": "x", "b": 2, "mode": "ok", "z": 1.5}
    assert env["SM_MODEL_DIR"].endswith("jobs/ok-1/opt/ml/model")
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_USER_ENTRY_POINT"] == "probe.py"
    hps = json.loads(
        (tmp_path / "emulator/jobs/ok-1/opt/ml/input/config/hyperparameters.json").read_text()
    )
    assert hps == job_request("ok-1", code_dir)["HyperParameters"]


async def test_failed_job_reports_the_stderr_tail(sagemaker: Any, code_dir: Path) -> None:
    await sagemaker.create_training_job(**job_request("fail-1", code_dir, "fail"))
    job = await wait_for_job(sagemaker, "fail-1")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["SecondaryStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 2\n")
    assert "ValueError: bad value" in reason
    assert len(reason) <= 1024


async def test_failure_file_becomes_the_failure_reason(sagemaker: Any, code_dir: Path) -> None:
    await sagemaker.create_training_job(**job_request("fail-2", code_dir, "failure-file"))
    job = await wait_for_job(sagemaker, "fail-2")
    assert job["FailureReason"] == "AlgorithmError: custom reason from the script"


async def test_stop_goes_through_stopping_to_stopped(
    sagemaker: Any, emulator: EmbeddedEmulator, code_dir: Path, s3: Any
) -> None:
    await sagemaker.create_training_job(**job_request("stop-1", code_dir, "hang"))
    await wait_for_log(emulator, "stop-1", "ready")
    await sagemaker.stop_training_job(TrainingJobName="stop-1")
    job = await wait_for_job(sagemaker, "stop-1")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert "Stopping" in [t["Status"] for t in job["SecondaryStatusTransitions"]]
    s3.head_object(Bucket="bucket", Key="out/stop-1/output/model.tar.gz")  # still uploaded
    with pytest.raises(ClientError) as err:
        await sagemaker.stop_training_job(TrainingJobName="stop-1")
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["Error"]["Message"] == (
        "The request was rejected because the training job is in status Stopped."
    )


async def test_max_runtime_stops_the_job(sagemaker: Any, code_dir: Path) -> None:
    await sagemaker.create_training_job(
        **job_request("slow-1", code_dir, "hang", StoppingCondition={"MaxRuntimeInSeconds": 1})
    )
    job = await wait_for_job(sagemaker, "slow-1", timeout=20)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


async def test_aws_errors_for_bad_name_duplicate_and_unknown_job(
    sagemaker: Any, code_dir: Path
) -> None:
    with pytest.raises(ClientError) as err:
        await sagemaker.create_training_job(**job_request("bad_name", code_dir))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'bad_name' at 'trainingJobName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )
    await sagemaker.create_training_job(**job_request("dup-1", code_dir))
    with pytest.raises(sagemaker.exceptions.ResourceInUse) as dup:
        await sagemaker.create_training_job(**job_request("dup-1", code_dir))
    assert "a training job with this name already exists" in dup.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        await sagemaker.describe_training_job(TrainingJobName="nobody-1")
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert missing.value.response["Error"]["Message"] == "Requested resource not found."


async def test_service_constraints_beyond_botocore_are_enforced(
    sagemaker: Any, code_dir: Path
) -> None:
    bad = job_request(
        "c-1",
        code_dir,
        ResourceConfig={
            "InstanceType": "ml.nope",
            "InstanceCount": 1,
            "KeepAlivePeriodInSeconds": 99999,
            "VolumeSizeInGB": 1,
        },
    )
    with pytest.raises(ClientError) as err:
        await sagemaker.create_training_job(**bad)
    message = err.value.response["Error"]["Message"]
    assert message.startswith("2 validation errors detected: ")
    assert (
        "at 'resourceConfig.instanceType' failed to satisfy constraint: Member must satisfy enum value set"
        in message
    )
    assert (
        "at 'resourceConfig.keepAlivePeriodInSeconds' failed to satisfy constraint: Member must have value less than or equal to 21600"
        in message
    )


async def test_list_and_search_find_jobs(sagemaker: Any, code_dir: Path) -> None:
    for i in range(3):
        await sagemaker.create_training_job(**job_request(f"lst-{i}", code_dir))
    for i in range(3):
        await wait_for_job(sagemaker, f"lst-{i}")
    page = await sagemaker.list_training_jobs(MaxResults=2)
    assert [s["TrainingJobName"] for s in page["TrainingJobSummaries"]] == ["lst-0", "lst-1"]
    rest = await sagemaker.list_training_jobs(MaxResults=2, NextToken=page["NextToken"])
    assert [s["TrainingJobName"] for s in rest["TrainingJobSummaries"]] == ["lst-2"]
    assert "NextToken" not in rest
    found = await sagemaker.search(
        Resource="TrainingJob",
        SearchExpression={
            "Filters": [{"Name": "TrainingJobName", "Operator": "In", "Value": "lst-0,lst-2"}]
        },
    )
    assert sorted(r["TrainingJob"]["TrainingJobName"] for r in found["Results"]) == [
        "lst-0",
        "lst-2",
    ]
    numeric = await sagemaker.search(
        Resource="TrainingJob",
        SearchExpression={
            "Filters": [{"Name": "Metrics.loss", "Operator": "LessThan", "Value": "0.5"}]
        },
    )
    assert len(numeric["Results"]) == 3
    both = await sagemaker.search(  # names and a metric, ANDed: no shortcut by name
        Resource="TrainingJob",
        SearchExpression={
            "Filters": [
                {"Name": "TrainingJobName", "Operator": "In", "Value": "lst-0,lst-2,nope"},
                {"Name": "Metrics.loss", "Operator": "GreaterThan", "Value": "-1"},
            ]
        },
    )
    assert sorted(r["TrainingJob"]["TrainingJobName"] for r in both["Results"]) == [
        "lst-0",
        "lst-2",
    ]
    one = await sagemaker.search(  # Equals is the default operator
        Resource="TrainingJob",
        SearchExpression={"Filters": [{"Name": "TrainingJobName", "Value": "lst-1"}]},
    )
    assert [r["TrainingJob"]["TrainingJobName"] for r in one["Results"]] == ["lst-1"]


async def test_batched_poll_uses_one_search_call_for_many_jobs(
    sagemaker: Any, emulator: EmbeddedEmulator, code_dir: Path
) -> None:
    names = [f"batch-{i}" for i in range(12)]
    jobs = TrainingJobs(sagemaker, RetryPolicy())
    for name in names:
        await jobs.create(job_request(name, code_dir))
    for name in names:
        await wait_for_job(sagemaker, name)
    before = emulator.calls["Search"]
    states = await jobs.poll([*names, "never-created-1"])
    assert emulator.calls["Search"] - before == 1
    assert set(states) == set(names)
    assert all(s.status == JobStatus.COMPLETED for s in states.values())
    assert states["batch-0"].final_metrics["loss"] == pytest.approx(1 / 3, abs=1e-4)


async def test_create_survives_throttling_and_adopts_its_own_job(
    tmp_path: Path, code_dir: Path
) -> None:
    """Sweeper's own client configuration (botocore standard mode under tenacity)."""
    settings = EmulatorSettings(
        RunnerSettings(root=tmp_path / "emu"), throttle_rate=0.3, internal_failure_rate=0.1, seed=3
    )

    async def no_wait(seconds: float) -> None:
        return None

    with EmbeddedEmulator(settings) as emu:
        async with AsyncExitStack() as stack:
            client = await open_client(
                stack,
                "sagemaker",
                region="us-east-1",
                endpoint_url=emu.endpoint_url,
                credentials=("test", "test"),
            )
            jobs = TrainingJobs(client, RetryPolicy(attempts=20, sleep=no_wait))
            for i in range(5):
                await jobs.create(job_request(f"thr-{i}", code_dir))
            await jobs.create(job_request("thr-0", code_dir))  # ResourceInUse: adopted, no error
            states = await jobs.poll([f"thr-{i}" for i in range(5)])
        assert len(states) == 5
        assert emu.calls["CreateTrainingJob"] > 6  # some attempts were refused and retried


async def test_create_adopts_its_own_job_but_not_a_strangers(
    sagemaker: Any, code_dir: Path
) -> None:
    jobs = TrainingJobs(sagemaker, RetryPolicy())
    await jobs.create(job_request("mine-1", code_dir))
    await jobs.create(job_request("mine-1", code_dir))  # the same request again: adopted
    with pytest.raises(BackendError, match="already exists with other hyperparameters"):
        await jobs.create(job_request("mine-1", code_dir, "fail"))


LEAVER = """\
import os, subprocess, sys
sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
kept = subprocess.Popen(sleep)  # in the job's process group
detached = subprocess.Popen(sleep, start_new_session=True)  # a session of its own
open("pids", "w").write(f"{kept.pid} {detached.pid}")
print("loss=0.5", flush=True)
"""


def _gone(pid: int) -> bool:
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


async def test_a_job_ends_when_its_entry_point_exits_and_what_it_left_running_with_it(
    sagemaker: Any, code_dir: Path
) -> None:
    """On SageMaker the container ends with its entry point: processes the script left
    running (in its group, or in a session of their own, holding its output) neither keep
    the job from completing nor outlive it."""
    (code_dir / "probe.py").write_text(LEAVER)
    await sagemaker.create_training_job(**job_request("leaver-1", code_dir))
    job = await wait_for_job(sagemaker, "leaver-1")  # not after their 600 s
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["FinalMetricDataList"][0]["Value"] == 0.5
    pids = (
        code_dir.parent / "emulator" / "jobs" / "leaver-1" / "opt" / "ml" / "code" / "pids"
    ).read_text()
    assert all(_gone(int(pid)) for pid in pids.split())
