"""Managed spot in the emulator: interruption, checkpoint restore, MaxWait, billing."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sweeper.emulator.embedded import EmbeddedEmulator
from sweeper.emulator.settings import SpotSettings
from tests.helpers import (
    ROOT,
    aio_client,
    embedded_emulator,
    job_request,
    s3_client,
    wait_for_job,
    wait_for_log,
)

SPOT = {"EnableManagedSpotTraining": True}


@pytest.fixture
def spot_emulator(tmp_path: Path) -> Iterator[EmbeddedEmulator]:
    """Every spot job is interrupted once, when its second checkpoint is saved."""
    spot = SpotSettings(interruption_rate=1.0, interrupt_on_log=r"checkpoint saved epoch=2")
    with embedded_emulator(tmp_path / "emulator", spot=spot, stop_grace_seconds=5) as emu:
        yield emu


@pytest.fixture
async def spot_client(spot_emulator: EmbeddedEmulator) -> AsyncIterator[Any]:
    async with aio_client(spot_emulator.endpoint_url) as client:
        yield client


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {**SPOT, "StoppingCondition": {"MaxRuntimeInSeconds": 60}},
            "Invalid MaxWaitTimeInSeconds",
        ),
        (
            {**SPOT, "StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 30}},
            "Invalid MaxWaitTimeInSeconds",
        ),
        (
            {"StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 60}},
            "only supported for managed spot training",
        ),
        (
            {
                **SPOT,
                "StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 60},
                "ResourceConfig": {
                    "InstanceType": "ml.m5.large",
                    "InstanceCount": 1,
                    "VolumeSizeInGB": 1,
                    "KeepAlivePeriodInSeconds": 60,
                },
            },
            "not supported with managed spot training",
        ),
    ],
)
async def test_spot_rules_are_enforced(
    sagemaker: Any, code_dir: Path, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as err:
        await sagemaker.create_training_job(**job_request("rule-1", code_dir, **extra))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert message in err.value.response["Error"]["Message"]


async def test_an_interrupted_spot_job_resumes_train_py_from_its_checkpoint(
    spot_client: Any, spot_emulator: EmbeddedEmulator, tmp_path: Path
) -> None:
    request = job_request(
        "spot-1",
        ROOT / "src",
        HyperParameters={
            "max_iter": "40",
            "epochs": "4",
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(str(ROOT / "src")),
        },
        AlgorithmSpecification={
            "TrainingImage": "img",
            "TrainingInputMode": "File",
            "MetricDefinitions": [
                {"Name": "validation:accuracy", "Regex": "val_accuracy=([0-9.]+)"}
            ],
        },
        StoppingCondition={"MaxRuntimeInSeconds": 300, "MaxWaitTimeInSeconds": 600},
        CheckpointConfig={"S3Uri": "s3://bucket/checkpoints/spot-1"},
        # One OpenMP thread: on a busy machine, sklearn's threads spin against the load
        # and a 5 s run takes minutes.
        Environment={"OMP_NUM_THREADS": "1"},
        **SPOT,
    )
    await spot_client.create_training_job(**request)
    job = await wait_for_job(spot_client, "spot-1", timeout=120)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    steps = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert steps == [
        "Starting",
        "Downloading",
        "Training",
        "Interrupted",
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    logs = spot_emulator.emulator.logs
    streams = sorted(n for n in logs.streams if n.startswith("spot-1/"))
    assert len(streams) == 2  # a new stream after the restart
    first, second = ("\n".join(m for _, m, _ in logs.streams[n].events) for n in streams)
    # Interrupted once checkpoint 2 was saved (the script may have saved one more before
    # the kill landed); the restart resumes from the last one saved, not from zero.
    saved = [int(n) for n in re.findall(r"checkpoint saved epoch=(\d+)", first)]
    assert saved[-1] >= 2
    assert f"resumed from checkpoint at epoch {saved[-1]}" in second
    assert "epoch=1 " not in second
    assert job["FinalMetricDataList"][0]["Value"] > 0.9
    assert job["BillableTimeInSeconds"] < job["TrainingTimeInSeconds"]
    s3 = s3_client(spot_emulator.s3_endpoint_url)  # the last checkpoint was synced to S3
    s3.head_object(Bucket="bucket", Key="checkpoints/spot-1/checkpoint.pkl")


async def test_max_wait_exceeded_stops_the_job(
    spot_client: Any, spot_emulator: EmbeddedEmulator, code_dir: Path
) -> None:
    request = job_request(
        "wait-1",
        code_dir,
        "hang",
        StoppingCondition={"MaxRuntimeInSeconds": 2, "MaxWaitTimeInSeconds": 2},
        **SPOT,
    )
    await spot_client.create_training_job(**request)
    await wait_for_log(spot_emulator, "wait-1", "ready")
    job = await wait_for_job(spot_client, "wait-1", timeout=30)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxWaitTimeExceeded")


async def test_interruption_after_a_delay_restarts_the_job_once(
    tmp_path: Path, code_dir: Path
) -> None:
    spot = SpotSettings(interruption_rate=1.0, interruption_after_seconds=0.3)
    with embedded_emulator(tmp_path / "emu", spot=spot) as emu:
        async with aio_client(emu.endpoint_url) as client:
            request = job_request(
                "timed-1",
                code_dir,
                "slow",
                StoppingCondition={"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 60},
                **SPOT,
            )
            await client.create_training_job(**request)
            job = await wait_for_job(client, "timed-1")
    steps = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert job["TrainingJobStatus"] == "Completed"
    assert steps.count("Interrupted") == 1
    assert steps.count("Training") == 2
