"""CloudWatch Logs for training jobs, through the real aiobotocore logs client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sweeper.aws.logs import JobLogs
from sweeper.aws.retry import RetryPolicy
from sweeper.emulator.embedded import EmbeddedEmulator
from tests.helpers import aio_client, embedded_emulator, job_request, wait_for_job, wait_for_log

GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture
async def logs(emulator: EmbeddedEmulator) -> AsyncIterator[Any]:
    async with aio_client(emulator.endpoint_url, "logs") as client:
        yield client


async def test_a_job_has_one_stream_readable_page_by_page(
    sagemaker: Any,
    logs: Any,
    code_dir: Path,
) -> None:
    await sagemaker.create_training_job(**job_request("log-1", code_dir))
    await wait_for_job(sagemaker, "log-1")
    streams = (
        await logs.describe_log_streams(
            logGroupName=GROUP, logStreamNamePrefix="log-1/", orderBy="LogStreamName"
        )
    )["logStreams"]
    assert len(streams) == 1
    name = streams[0]["logStreamName"]
    assert re.fullmatch(r"log-1/algo-1-\d{10}", name)
    assert streams[0]["firstEventTimestamp"] <= streams[0]["lastEventTimestamp"]

    first = await logs.get_log_events(
        logGroupName=GROUP, logStreamName=name, startFromHead=True, limit=2
    )
    assert [e["message"][:5] for e in first["events"]] == ["ARGV ", "ENV {"]
    rest = await logs.get_log_events(
        logGroupName=GROUP, logStreamName=name, nextToken=first["nextForwardToken"]
    )
    assert [e["message"] for e in rest["events"]] == [
        "step=0 loss=1.0000",
        "step=1 loss=0.5000",
        "step=2 loss=0.3333",
    ]
    end = await logs.get_log_events(
        logGroupName=GROUP, logStreamName=name, nextToken=rest["nextForwardToken"]
    )
    assert end["events"] == []
    assert end["nextForwardToken"] == rest["nextForwardToken"]  # nothing newer: same token


async def test_logs_are_readable_while_the_job_runs(
    sagemaker: Any,
    logs: Any,
    emulator: EmbeddedEmulator,
    code_dir: Path,
) -> None:
    await sagemaker.create_training_job(**job_request("live-1", code_dir, "hang"))
    await wait_for_log(emulator, "live-1", "ready")
    assert (await sagemaker.describe_training_job(TrainingJobName="live-1"))[
        "TrainingJobStatus"
    ] == "InProgress"
    found = await logs.filter_log_events(
        logGroupName=GROUP, logStreamNamePrefix="live-1/", filterPattern="ready"
    )
    assert [e["message"] for e in found["events"]] == ["ready"]
    await sagemaker.stop_training_job(TrainingJobName="live-1")


async def test_filter_log_events_matches_all_terms(
    sagemaker: Any, logs: Any, code_dir: Path
) -> None:
    await sagemaker.create_training_job(**job_request("flt-1", code_dir))
    await wait_for_job(sagemaker, "flt-1")
    found = await logs.filter_log_events(logGroupName=GROUP, filterPattern='step=1 "loss=0.5"')
    assert [(e["logStreamName"][:6], e["message"]) for e in found["events"]] == [
        ("flt-1/", "step=1 loss=0.5000")
    ]


async def test_unknown_group_and_stream_are_resource_not_found(
    sagemaker: Any,
    logs: Any,
    code_dir: Path,
) -> None:
    with pytest.raises(ClientError) as no_group:
        await logs.describe_log_streams(logGroupName="/aws/sagemaker/Nope")
    assert no_group.value.response["Error"]["Code"] == "ResourceNotFoundException"
    await sagemaker.create_training_job(**job_request("nf-1", code_dir))
    await wait_for_job(sagemaker, "nf-1")
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as no_stream:
        await logs.get_log_events(logGroupName=GROUP, logStreamName="nf-1/algo-1-1")
    assert (
        no_stream.value.response["Error"]["Message"] == "The specified log stream does not exist."
    )


async def test_job_logs_reads_a_whole_log_through_the_api(
    sagemaker: Any, logs: Any, code_dir: Path
) -> None:
    await sagemaker.create_training_job(**job_request("whole-1", code_dir))
    await wait_for_job(sagemaker, "whole-1")
    text = await JobLogs(logs, RetryPolicy()).text("whole-1")
    assert text.splitlines()[2:] == [
        "step=0 loss=1.0000",
        "step=1 loss=0.5000",
        "step=2 loss=0.3333",
    ]
    assert await JobLogs(logs, RetryPolicy()).text("never-ran-1") == ""


LOUD = """
import sys
for i in range(5000):
    print(f"line {i} loss={1.0 / (i + 1):.6f}")
print("loss=0.000001 done")
"""


async def test_a_busy_machine_loses_no_last_line(tmp_path: Path) -> None:
    """No grace for reading what is left in a job's pipes once it exits (as on a machine
    too busy to read them within any grace): nobody else holds them, so every line is
    read to the end, and the last value printed is the job's final metric."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text(LOUD)
    with embedded_emulator(tmp_path / "emu", drain_seconds=0.0) as emu:
        async with aio_client(emu.endpoint_url) as client:
            await client.create_training_job(**job_request("loud-1", code))
            job = await wait_for_job(client, "loud-1", timeout=120)
            lines = emu.emulator.logs.text("loud-1").splitlines()
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert lines[-1] == "loss=0.000001 done" and len(lines) == 5001
    finals = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert finals == {"loss": pytest.approx(1e-6)}
