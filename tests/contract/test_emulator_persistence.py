"""``--state DIR``: jobs, pools, logs and S3 objects survive an emulator restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from sweeper.aws.clients import open_client
from sweeper.emulator.embedded import EmbeddedEmulator
from sweeper.emulator.settings import EmulatorSettings, RunnerSettings
from tests.helpers import (
    PROBE,
    ROOT,
    boto3_client,
    emulator_info,
    job_request,
    s3_client,
    s3_tar_names,
    standalone_emulator,
    start_emulator_process,
    wait_for_job,
    wait_for_log,
)

KEEP = {
    "ResourceConfig": {
        "InstanceType": "ml.m5.large",
        "InstanceCount": 1,
        "VolumeSizeInGB": 1,
        "KeepAlivePeriodInSeconds": 600,
    }
}


async def _client(stack: AsyncExitStack, url: str, service: str = "sagemaker") -> Any:
    return await open_client(
        stack, service, region="us-east-1", endpoint_url=url, credentials=("test", "test")
    )


async def test_a_restarted_emulator_keeps_its_jobs_pools_and_logs(
    tmp_path: Path, code_dir: Path
) -> None:
    settings = EmulatorSettings(RunnerSettings(root=tmp_path / "state", stop_grace_seconds=5))
    with EmbeddedEmulator(settings) as first:
        s3_client(first.s3_endpoint_url).create_bucket(Bucket="bucket")
        async with AsyncExitStack() as stack:
            sm = await _client(stack, first.endpoint_url)
            await sm.create_training_job(**job_request("done-1", code_dir, **KEEP))
            await wait_for_job(sm, "done-1")
            await sm.create_training_job(
                **job_request(
                    "busy-1",
                    code_dir,
                    "hang",
                    **KEEP | {"ResourceConfig": KEEP["ResourceConfig"] | {"VolumeSizeInGB": 2}},
                )
            )
            await wait_for_log(first, "busy-1", "ready")
    with EmbeddedEmulator(settings) as second:  # the same state directory
        async with AsyncExitStack() as stack:
            sm = await _client(stack, second.endpoint_url)
            done = await sm.describe_training_job(TrainingJobName="done-1")
            busy = await sm.describe_training_job(TrainingJobName="busy-1")
            with pytest.raises(sm.exceptions.ResourceInUse):
                await sm.create_training_job(**job_request("done-1", code_dir))
            logs = await _client(stack, second.endpoint_url, "logs")
            streams = await logs.describe_log_streams(
                logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="done-1/"
            )
            events = await logs.get_log_events(
                logGroupName="/aws/sagemaker/TrainingJobs",
                logStreamName=streams["logStreams"][0]["logStreamName"],
                startFromHead=True,
            )
        model = s3_tar_names(
            s3_client(second.s3_endpoint_url), done["ModelArtifacts"]["S3ModelArtifacts"]
        )
    assert model == ["weights.txt"]  # the restarted emulator's S3 still has it
    assert done["TrainingJobStatus"] == "Completed"
    assert done["FinalMetricDataList"][0]["MetricName"] == "loss"
    assert done["WarmPoolStatus"]["Status"] == "Available"
    assert busy["TrainingJobStatus"] == "Failed"
    assert busy["FailureReason"] == "InternalServerError: the emulator shut down during the job"
    assert busy["WarmPoolStatus"]["Status"] == "Terminated"
    assert "step=2 loss=0.3333" in [e["message"] for e in events["events"]]


def test_jobs_running_when_the_emulator_crashed_come_back_failed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text(PROBE)
    crashed, url = start_emulator_process(state)
    try:
        s3 = s3_client(emulator_info(url)["s3_endpoint_url"])
        s3.create_bucket(Bucket="bucket")
        s3.put_object(Bucket="bucket", Key="data/kept.txt", Body=b"kept")
        sm = boto3_client(url)
        sm.create_training_job(**job_request("crash-1", code, "slow"))
        deadline = time.monotonic() + 30
        while sm.describe_training_job(TrainingJobName="crash-1")["SecondaryStatus"] != "Training":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        crashed.kill()  # SIGKILL: no shutdown code runs
        crashed.wait(timeout=30)
    with standalone_emulator(state) as url:
        sm = boto3_client(url)
        job = sm.describe_training_job(TrainingJobName="crash-1")
        s3 = s3_client(emulator_info(url)["s3_endpoint_url"])
        kept = s3.get_object(Bucket="bucket", Key="data/kept.txt")["Body"].read()
    assert kept == b"kept"  # S3 objects survive the emulator's SIGKILL
    assert job["TrainingJobStatus"] == "Failed"
    assert (
        job["FailureReason"]
        == "InternalServerError: the emulator restarted while the job was running"
    )


def test_a_second_emulator_on_the_same_state_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with standalone_emulator(state):
        second = subprocess.run(
            [
                sys.executable,
                str(ROOT / "sweep.py"),
                "emulator",
                "--port",
                "0",
                "--state",
                str(state),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert second.returncode == 1
    assert "is in use by another process" in second.stderr
    assert "Traceback" not in second.stderr


async def test_experiments_survive_a_restart_one_file_per_record(tmp_path: Path) -> None:
    """Each record is its own file (a change rewrites what changed, not the store): what
    was created, updated and deleted before a restart is so after it; an earlier
    emulator's single experiments.json is moved to the per-record files on start."""
    root = tmp_path / "state"
    root.mkdir()
    legacy = {
        "experiments": {
            "old": {
                "ExperimentName": "old",
                "ExperimentArn": "arn:aws:sagemaker:us-east-1:123456789012:experiment/old",
                "DisplayName": "old",
                "CreationTime": 1.0,
                "LastModifiedTime": 1.0,
            }
        },
        "trials": {},
        "components": {},
    }
    (root / "experiments.json").write_text(json.dumps(legacy))
    settings = EmulatorSettings(RunnerSettings(root=root))
    with EmbeddedEmulator(settings) as first:
        async with AsyncExitStack() as stack:
            sm = await _client(stack, first.endpoint_url)
            await sm.create_experiment(ExperimentName="exp")
            await sm.create_trial(TrialName="t", ExperimentName="exp")
            for name in ("kept", "gone", "other"):
                await sm.create_trial_component(TrialComponentName=name)
            await sm.associate_trial_component(TrialComponentName="kept", TrialName="t")
            await sm.update_trial_component(
                TrialComponentName="kept", Status={"PrimaryStatus": "Completed"}
            )
            await sm.delete_trial_component(TrialComponentName="gone")
    files = sorted(p.name for p in (root / "experiments" / "components").iterdir())
    assert files == ["kept.json", "other.json"]
    assert not (root / "experiments.json").exists()
    with EmbeddedEmulator(settings) as second:
        async with AsyncExitStack() as stack:
            sm = await _client(stack, second.endpoint_url)
            kept = await sm.describe_trial_component(TrialComponentName="kept")
            listed = await sm.list_trial_components(TrialName="t")
            names = [
                e["ExperimentName"] for e in (await sm.list_experiments())["ExperimentSummaries"]
            ]
            with pytest.raises(sm.exceptions.ResourceNotFound):
                await sm.describe_trial_component(TrialComponentName="gone")
    assert kept["Status"] == {"PrimaryStatus": "Completed"}
    assert [c["TrialComponentName"] for c in listed["TrialComponentSummaries"]] == ["kept"]
    assert sorted(names) == ["exp", "old"]


async def test_the_emulator_starts_past_records_a_crash_cut_short(
    tmp_path: Path, code_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A record cut short (a crash mid-write, a full disk, a hand edit) is kept aside as
    ``<name>.unreadable``, said on stderr, and the emulator starts with the rest; a log
    line cut short is skipped."""
    root = tmp_path / "state"
    settings = EmulatorSettings(RunnerSettings(root=root))
    with EmbeddedEmulator(settings) as first:
        s3_client(first.s3_endpoint_url).create_bucket(Bucket="bucket")
        async with AsyncExitStack() as stack:
            sm = await _client(stack, first.endpoint_url)
            for name in ("cut-1", "whole-1"):
                await sm.create_training_job(**job_request(name, code_dir))
                await wait_for_job(sm, name)
            await sm.create_experiment(ExperimentName="cut-exp")
    record = root / "records" / "cut-1.json"
    cut = record.read_text()[:40]
    record.write_text(cut)
    (root / "records" / "bogus-1.json").write_text("[1, 2]")  # JSON, not a job record
    experiment = next((root / "experiments").glob("*/cut-exp.json"))
    experiment.write_text("{")
    log = next((root / "logs" / "whole-1").glob("*.jsonl"))
    log.write_text(log.read_text() + '[1700000000000, "cut sho')
    with EmbeddedEmulator(settings) as second:
        async with AsyncExitStack() as stack:
            sm = await _client(stack, second.endpoint_url)
            names = [
                j["TrainingJobName"]
                for j in (await sm.list_training_jobs())["TrainingJobSummaries"]
            ]
            whole = await sm.describe_training_job(TrainingJobName="whole-1")
            experiments = (await sm.list_experiments())["ExperimentSummaries"]
            await sm.create_training_job(**job_request("after-1", code_dir))
            after = await wait_for_job(sm, "after-1")
    assert names == ["whole-1"]
    assert whole["TrainingJobStatus"] == "Completed"
    assert experiments == []
    assert after["TrainingJobStatus"] == "Completed"
    assert (root / "records" / "cut-1.json.unreadable").read_text() == cut
    assert (root / "records" / "bogus-1.json.unreadable").read_text() == "[1, 2]"
    err = capfd.readouterr().err
    assert f"{record} cannot be read" in err
    assert f"{experiment} cannot be read" in err
    assert experiment.with_name("cut-exp.json.unreadable").read_text() == "{"
