"""A user's metric regex never freezes the emulator: it runs off the event loop under a
CPU-time bound per line, and one past the bound is dropped, said once in its job's log;
reading metrics never decides a job's fate."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sweeper.emulator.embedded import EmbeddedEmulator
from tests.helpers import job_request, wait_for_job

SLOW = r"(.*){1,32000}[bc](\d)"  # backtracks for hours on a line without b or c


def _with_regex(name: str, code: Path, regex: str, mode: str = "ok") -> dict[str, Any]:
    request = job_request(name, code, mode)
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "loss", "Regex": r"loss=([0-9.]+)"},
        {"Name": "slow", "Regex": regex},
    ]
    return request


async def test_a_catastrophic_regex_is_dropped_and_its_job_runs_to_its_end(
    sagemaker: Any, emulator: EmbeddedEmulator, code_dir: Path
) -> None:
    await sagemaker.create_training_job(**job_request("bystander", code_dir, "hang"))
    await sagemaker.create_training_job(**_with_regex("slow-regex", code_dir, SLOW))
    slowest = 0.0
    async with asyncio.timeout(60):
        while True:
            began = time.monotonic()
            job = await sagemaker.describe_training_job(TrainingJobName="slow-regex")
            await sagemaker.describe_training_job(TrainingJobName="bystander")
            slowest = max(slowest, time.monotonic() - began)
            if job["TrainingJobStatus"] != "InProgress":
                break
            await asyncio.sleep(0.01)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    finals = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
    assert finals == {"loss": pytest.approx(1 / 3, abs=1e-4)}  # the other metric is read
    said = [
        line
        for line in emulator.emulator.logs.text("slow-regex").splitlines()
        if "MetricDefinitions 'slow' regex" in line
    ]
    assert len(said) == 1, said  # once, however many lines it would have been slow on
    assert "catastrophic backtracking" in said[0] and "no longer matched" in said[0]
    bystander = await sagemaker.describe_training_job(TrainingJobName="bystander")
    assert bystander["TrainingJobStatus"] == "InProgress"  # another job's lines go on
    assert slowest < 5.0  # `re` on the event loop held every request for the whole search
    await sagemaker.stop_training_job(TrainingJobName="bystander")
    await wait_for_job(sagemaker, "bystander")


async def test_a_regex_that_does_not_compile_is_refused_at_creation(
    sagemaker: Any, code_dir: Path
) -> None:
    with pytest.raises(ClientError) as err:
        await sagemaker.create_training_job(**_with_regex("bad-regex", code_dir, r"loss=(["))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "MetricDefinitions 'slow' regex" in err.value.response["Error"]["Message"]
